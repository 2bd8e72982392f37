"""The rows8 layout (csrc/core/rows8.h, lowbit.RepackedTensor): its bytes against a numpy statement of
the layout, the round trip for every block type, and matmul on it for every type, ISA and thread count:
bit for bit equal to matmul on GGUF's rows for q4_0 / q4_1 (llama.cpp's orders) and for the types without
a rows8 kernel (they unpack per call), within test_matmul's float-rounding bound of the exact model for
the K-quant kernels (lowbit's own order, like their row-major kernels); the model repacking at load gives
the logits it gave without (K-quants: to float rounding).
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit
from inputs import make_input
from lowbit import _core
from lowbit.io import open_gguf, write_gguf

INFO = {t["name"]: t for t in lowbit.types()}
BLOCK_TYPES = [t["name"] for t in lowbit.types() if t["is_quantized"] and not t["is_activation"]]
ISAS = lowbit.cpu_info()["supported"]
KERNEL_TYPES = sorted(lowbit.ops.rows8_kernel_types())
EXACT_TYPES = {"q4_0", "q4_1", "q8_0"}  # rows8 kernels in ggml's order: the row-major kernels' bits

# Each block struct's fields in order (csrc/core/blocks.h): 2 = a 2-byte value, else a byte array.
FIELDS = {"q4_0": [2, 16], "q4_1": [2, 2, 16], "q5_0": [2, 4, 16], "q5_1": [2, 2, 4, 16], "q8_0": [2, 32],
          "q2_k": [16, 64, 2, 2], "q3_k": [32, 64, 12, 2], "q4_k": [2, 2, 12, 128], "q5_k": [2, 2, 12, 32, 128],
          "q6_k": [128, 64, 16, 2], "iq4_nl": [2, 16], "iq4_xs": [2, 2, 4, 128]}


def rows8_spec(data: np.ndarray, qtype: str, n: int, k: int) -> np.ndarray:
    """rows8 in numpy: per group of 8 rows and block, the 8 rows' blocks field by field, 2-byte fields
    as 8 consecutive values, byte arrays as 4-byte chunks of the 8 rows in turn."""
    bs = INFO[qtype]["type_size"]
    blocks = data.reshape(n // 8, 8, k // INFO[qtype]["block_size"], bs).transpose(0, 2, 1, 3)  # (g, b, r, bytes)
    parts, off = [], 0
    for size in FIELDS[qtype]:
        f = blocks[..., off:off + size]
        if size != 2:  # (g, b, r, chunks, 4) -> (g, b, chunks, r, 4)
            f = f.reshape(*f.shape[:3], size // 4, 4).transpose(0, 1, 3, 2, 4)
        parts.append(f.reshape(*f.shape[:2], -1))
        off += size
    assert off == bs
    return np.concatenate(parts, axis=-1).reshape(-1)


def _weights(qtype, n, k, seed=0):
    return lowbit.quantize(make_input("normal", n, k, seed=seed), qtype)


def test_fields_cover_every_block_type():
    assert sorted(FIELDS) == sorted(BLOCK_TYPES)
    for t, f in FIELDS.items():
        assert sum(f) == INFO[t]["type_size"] and all(s == 2 or s % 4 == 0 for s in f)


@pytest.mark.parametrize("qtype", BLOCK_TYPES)
@pytest.mark.parametrize("n,blocks", [(8, 1), (24, 3), (40, 2)])
def test_layout_matches_spec_and_round_trips(qtype, n, blocks):
    k = blocks * INFO[qtype]["block_size"]
    W = _weights(qtype, n, k)
    for threads in (1, 3):
        r8 = _core.repack_rows8(W.data, qtype, n, k, threads)
        np.testing.assert_array_equal(r8.reshape(-1), rows8_spec(W.data, qtype, n, k))
        np.testing.assert_array_equal(_core.unpack_rows8(r8, qtype, n, k, threads).reshape(-1), W.data)
    ids = np.array([n - 1, 0, 5, 5])
    np.testing.assert_array_equal(_core.unpack_rows8_rows(r8, qtype, n, k, ids), W.data.reshape(n, -1)[ids])


# (m, n, blocks along k): one block, odd block counts, n not a multiple of the 16-column units, m = 1..9,
# 31 and past the 8-row GEMM threshold, 513 rows (more than a thread's slab).
SHAPES = [(1, 8, 1), (1, 40, 3), (2, 24, 7), (3, 136, 1), (4, 16, 2), (5, 56, 5), (6, 8, 3), (7, 64, 2),
          (8, 104, 1), (9, 24, 4), (31, 48, 3), (64, 40, 3), (513, 24, 2)]


@pytest.mark.parametrize("qtype", KERNEL_TYPES)
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("m,n,blocks", SHAPES)
def test_rows8_kernels(qtype, isa, m, n, blocks):
    """q4_0 / q4_1: the row-major kernels' bits; K-quants: the exact model's value to float rounding,
    and the same result at every thread count."""
    from test_matmul import RTOL, model

    k = blocks * INFO[qtype]["block_size"]
    W = _weights(qtype, n, k, seed=m)
    x = make_input("normal", m, k, seed=m + 1)
    r8 = _core.repack_rows8(W.data, qtype, n, k)
    first = None
    for threads in (1, 2, 3):
        got = _core.matmul(x, r8, qtype, n, k, threads, isa, "rows8")
        if qtype in EXACT_TYPES:
            want = _core.matmul(x, W.data, qtype, n, k, threads, isa)
            np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
        first = got if first is None else first
        np.testing.assert_array_equal(got.view(np.uint32), first.view(np.uint32))
    if qtype not in EXACT_TYPES:
        ref, bound = model(x, W)
        assert np.all(np.abs(first - ref) <= RTOL * bound + 1e-30), np.max(np.abs(first - ref) / bound)


@pytest.mark.parametrize("qtype", [t for t in BLOCK_TYPES if t not in KERNEL_TYPES])
@pytest.mark.parametrize("m", [1, 9])
def test_types_without_a_rows8_kernel_unpack_to_the_same_bits(qtype, m):
    k = 2 * INFO[qtype]["block_size"]
    W = _weights(qtype, 72, k)
    x = make_input("normal", m, k, seed=3)
    r8 = _core.repack_rows8(W.data, qtype, 72, k)
    for isa in ISAS:
        want = _core.matmul(x, W.data, qtype, 72, k, 2, isa)
        np.testing.assert_array_equal(_core.matmul(x, r8, qtype, 72, k, 2, isa, "rows8").view(np.uint32),
                                      want.view(np.uint32))


def test_repacked_tensor_api():
    W = _weights("q4_0", 48, 96)
    R = W.to("cpu", layout="rows8")
    assert isinstance(R, lowbit.RepackedTensor) and R.layout == "rows8" and R.device == "cpu"
    assert (R.qtype, R.shape, R.nbytes, R.bits_per_weight) == (W.qtype, W.shape, W.nbytes, W.bits_per_weight)
    assert R.to("cpu") is R and W.to("cpu", layout="gguf") is W
    np.testing.assert_array_equal(R.to("cpu", layout="gguf").data, W.data)
    np.testing.assert_array_equal(R.dequantize(), W.dequantize())
    np.testing.assert_array_equal(lowbit.dequantize(R, threads=2), W.dequantize())
    np.testing.assert_array_equal(R.rows([7, 0]).dequantize(), W.dequantize()[[7, 0]])
    for x in (make_input("normal", 3, 96, seed=1), make_input("normal", 2, 96, seed=2).astype(np.float16),
              make_input("normal", 10, 96, seed=3).reshape(2, 5, 96)):
        np.testing.assert_array_equal(lowbit.matmul(x, R), lowbit.matmul(x, W))
        np.testing.assert_array_equal(lowbit.matmul(x, R, threads=2, isa="generic"), lowbit.matmul(x, W, isa="generic"))


def test_bad_input():
    W = _weights("q4_0", 12, 64)
    with pytest.raises(ValueError, match=r"\[to\].*rows8.*rows % 8"):
        W.to("cpu", layout="rows8")
    with pytest.raises(ValueError, match=r"\[to\].*rows8"):
        lowbit.quantize(make_input("normal", 8, 64), "f16").to("cpu", layout="rows8")
    with pytest.raises(ValueError, match=r"\[to\].*layout"):
        _weights("q4_0", 8, 64).to("cpu", layout="tile9")
    with pytest.raises(ValueError, match=r"\[matmul\].*n % 8"):
        _core.matmul(make_input("normal", 1, 64), W.data, "q4_0", 12, 64, 1, "", "rows8")
    with pytest.raises(ValueError, match=r"\[matmul\].*layout"):
        _core.matmul(make_input("normal", 1, 64), W.data, "q4_0", 12, 64, 1, "", "diagonal")
    with pytest.raises(ValueError, match=r"\[repack_rows8\].*multiple of 8"):
        _core.repack_rows8(W.data, "q4_0", 12, 64)
    with pytest.raises(ValueError, match=r"\[repack_rows8\].*bytes"):
        _core.repack_rows8(W.data[:-1], "q4_0", 8, 64)
    with pytest.raises(ValueError, match=r"\[unpack_rows8\].*rows8 layout"):
        _core.unpack_rows8(np.zeros(8 * 64 * 2, np.uint8), "f16", 8, 64)
    R = _weights("q4_0", 8, 64).to("cpu", layout="rows8")
    with pytest.raises(ValueError, match=r"\[unpack_rows8_rows\].*outside"):
        R.rows([8])
    with pytest.raises(TypeError, match=r"\[RepackedTensor.rows\]"):
        R.rows([1.5])
    with pytest.raises(ValueError, match=r"\[RepackedTensor\]"):
        lowbit.RepackedTensor(np.zeros(36, np.uint8), "q4_0", (2, 32))


def _tiny_model(path, qtype):
    """A 2-layer llama whose matrices are all `qtype`, with the output tied to the embedding."""
    rng = np.random.default_rng(0)
    d, ff, vocab, heads = (64, 96, 80, 4) if INFO[qtype]["block_size"] == 32 else (256, 512, 80, 8)
    md = {"general.architecture": "llama", "llama.block_count": 2, "llama.context_length": 64,
          "llama.embedding_length": d, "llama.feed_forward_length": ff, "llama.attention.head_count": heads,
          "llama.attention.head_count_kv": 2, "llama.vocab_size": vocab,
          "llama.attention.layer_norm_rms_epsilon": lowbit.io.GGUFValue(1e-6, "float32")}
    q = lambda shape: lowbit.quantize((rng.standard_normal(shape) * 0.1).astype(np.float32), qtype)  # noqa: E731
    tensors = [("token_embd.weight", q((vocab, d))), ("output_norm.weight", np.ones(d, np.float32))]
    for i in range(2):
        p = f"blk.{i}."
        tensors += [(p + "attn_norm.weight", np.ones(d, np.float32)), (p + "ffn_norm.weight", np.ones(d, np.float32)),
                    (p + "attn_q.weight", q((d, d))), (p + "attn_k.weight", q((2 * d // heads, d))),
                    (p + "attn_v.weight", q((2 * d // heads, d))),
                    (p + "attn_output.weight", q((d, d))), (p + "ffn_gate.weight", q((ff, d))),
                    (p + "ffn_up.weight", q((ff, d))), (p + "ffn_down.weight", q((d, ff)))]
    write_gguf(path, md, tensors)
    return path


@pytest.mark.parametrize("qtype", KERNEL_TYPES)
@pytest.mark.parametrize("fused", [True, False])
def test_model_repacked_at_load_gives_the_same_logits(tmp_path, qtype, fused):
    from lowbit.model.llama import LlamaModel

    path = _tiny_model(str(tmp_path / "m.gguf"), qtype)
    tokens = np.random.default_rng(1).integers(0, 80, 19)
    logits = {}
    for repack in (False, True):
        m = LlamaModel.from_gguf(open_gguf(path), threads=2, repack=repack)
        m.use_fused = fused
        assert isinstance(m.w.layers[1].w_down, lowbit.RepackedTensor) == repack
        assert (m.w.output is m.w.tok_embd) and isinstance(m.w.output, lowbit.RepackedTensor) == repack
        cache = m.new_cache(24)
        out = [m.forward(tokens, 0, cache, logits_from=0)]
        out += [m.forward([int(t)], 19 + i, cache) for i, t in enumerate(tokens[:3])]  # decode steps
        logits[repack] = np.concatenate(out)
    if qtype in EXACT_TYPES:
        np.testing.assert_array_equal(logits[True].view(np.uint32), logits[False].view(np.uint32))
    else:
        # A rounding difference can move an activation across a q8_K step of the next matmul's input, and
        # that step then reaches every later logit through the cache (seen on this random model: 0.04% and
        # 0.8% relative difference for q4_K / q5_K); a wrong block or scale would be off by far more.
        diff = np.linalg.norm(logits[True] - logits[False]) / np.linalg.norm(logits[False])
        assert diff < 0.03, diff
        assert np.mean(logits[True].argmax(1) == logits[False].argmax(1)) >= 0.9
