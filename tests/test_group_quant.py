"""GPTQ / AWQ group formats: GroupQuantizedTensor's kernels against numpy (dequantize bit-exact with
lowbit.io.gptq_awq.dequantize_grid, matmul against a float64 reference, every ISA present), and HF
GPTQ / AWQ checkpoints written by lowbit's own exporters loaded and run on them."""

import json
import os

import lowbit
import numpy as np
import pytest
from lowbit.errors import CheckpointError
from lowbit.io.gptq_awq import dequantize_grid

ISAS = [isa for isa in ("generic", "avx2", "avx512") if isa in lowbit.cpu_info()["supported"]]
# |y - x @ W^T| <= MATMUL_TOL * (|x| @ |W|^T): f32 products summed in f32 (per group, then scaled),
# against float64; the largest seen over these cases is 4.3e-7 (avx2), 2.0e-7 (generic).
MATMUL_TOL = 1e-5


def _grid(rng, bits, n, k, group, act_order):
    width = k if group == -1 else group
    G = -(-k // width)
    g_idx = (np.arange(k) // width).astype(np.int32)
    if act_order:
        g_idx = rng.permutation(g_idx).astype(np.int32)
    q = rng.integers(0, 1 << bits, (n, k)).astype(np.uint8)
    scales = rng.uniform(1e-3, 0.1, (n, G)).astype(np.float16).astype(np.float32)
    zeros = rng.integers(0, (1 << bits) + 1, (n, G)).astype(np.float32)  # GPTQ v1 zero + 1 reaches 2^bits
    return q, scales, zeros, g_idx


# (n, k, group, act_order): partial last groups (k % group), one group per row, act-order g_idx,
# k not a multiple of 32, group sizes below and above the 32-column chunk
SHAPES = [(19, 100, 32, False), (33, 256, 128, True), (8, 77, -1, False), (40, 300, 64, True),
          (24, 96, 16, True), (17, 160, 48, False)]


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "n{}k{}g{}{}".format(*s[:3], "a" if s[3] else ""))
def test_dequantize_and_matmul_every_isa(bits, shape):
    n, k, group, act_order = shape
    rng = np.random.default_rng(bits * 1000 + n)
    q, scales, zeros, g_idx = _grid(rng, bits, n, k, group, act_order)
    w = lowbit.GroupQuantizedTensor.from_grid(q, scales, zeros, g_idx, bits, group)
    want = dequantize_grid(q, zeros, scales, g_idx)
    W64 = want.astype(np.float64)
    for isa in ISAS:
        assert np.array_equal(w.dequantize(isa=isa), want), isa
        assert np.array_equal(lowbit.dequantize(w, isa=isa, threads=3), want), isa
        for m in (*range(1, 10), 31, 513):
            x = rng.standard_normal((m, k)).astype(np.float32)
            y = lowbit.matmul(x, w, isa=isa, threads=1 + m % 3)
            ref = x.astype(np.float64) @ W64.T
            bound = MATMUL_TOL * (np.abs(x).astype(np.float64) @ np.abs(W64).T) + 1e-30
            assert y.shape == (m, n) and y.dtype == np.float32
            assert np.all(np.abs(y - ref) <= bound), (isa, m, float(np.max(np.abs(y - ref) / bound)))


def test_unused_groups():
    """A g_idx that leaves a group empty (its scales never read) and puts the rest out of order."""
    rng = np.random.default_rng(11)
    q, scales, zeros, _ = _grid(rng, 4, 12, 96, 32, False)
    g_idx = rng.permutation(np.repeat([0, 2, 2], 32)).astype(np.int32)
    w = lowbit.GroupQuantizedTensor.from_grid(q, scales, zeros, g_idx, 4)
    want = dequantize_grid(q, zeros, scales, g_idx)
    x = rng.standard_normal((3, 96)).astype(np.float32)
    for isa in ISAS:
        assert np.array_equal(w.dequantize(isa=isa), want)
        np.testing.assert_allclose(lowbit.matmul(x, w, isa=isa), x @ want.T, rtol=1e-5, atol=1e-5)


def test_matmul_leading_dims_f16_and_thread_independence():
    rng = np.random.default_rng(7)
    q, scales, zeros, g_idx = _grid(rng, 4, 70, 256, 128, True)
    w = lowbit.GroupQuantizedTensor.from_grid(q, scales, zeros, g_idx, 4, 128)
    x = rng.standard_normal((2, 3, 256)).astype(np.float32)
    y = lowbit.matmul(x, w)
    assert y.shape == (2, 3, 70)
    np.testing.assert_array_equal(y, lowbit.matmul(x.reshape(6, 256), w).reshape(2, 3, 70))
    np.testing.assert_array_equal(lowbit.matmul(x.astype(np.float16), w),
                                  lowbit.matmul(x.astype(np.float16).astype(np.float32), w))
    for m in (1, 5, 100):
        xm = rng.standard_normal((m, 256)).astype(np.float32)
        np.testing.assert_array_equal(lowbit.matmul(xm, w, threads=1), lowbit.matmul(xm, w, threads=4))


def test_group_tensor_bad_input():
    rng = np.random.default_rng(1)
    q, scales, zeros, g_idx = _grid(rng, 4, 8, 64, 32, False)
    G = lowbit.GroupQuantizedTensor
    w = G.from_grid(q, scales, zeros, g_idx, 4, 32)
    with pytest.raises(ValueError, match=r"\[GroupQuantizedTensor\] bits"):
        G.from_grid(q, scales, zeros, g_idx, 5)
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 4\)"):
        G.from_grid(q, scales, zeros, g_idx, 2)
    with pytest.raises(ValueError, match="g_idx must lie"):
        G.from_grid(q, scales, zeros, g_idx + 1, 4)
    with pytest.raises(ValueError, match="g_idx must be"):
        G.from_grid(q, scales, zeros, g_idx[:10], 4)
    with pytest.raises(ValueError, match="scales and zeros"):
        G.from_grid(q, scales[:, :1], zeros, g_idx, 4)
    with pytest.raises(TypeError, match="integers"):
        G.from_grid(q.astype(np.float32), scales, zeros, g_idx, 4)
    with pytest.raises(ValueError, match=r"\[matmul\].*k=64"):
        lowbit.matmul(np.zeros((2, 63), np.float32), w)
    with pytest.raises(TypeError, match=r"\[matmul\].*float32 or float16"):
        lowbit.matmul(np.zeros((2, 64), np.int32), w)
    with pytest.raises(ValueError, match=r"\[matmul\].*C-contiguous"):
        lowbit.matmul(np.zeros((64, 2), np.float32).T, w)
    with pytest.raises(ValueError, match=r"\[matmul\].*non-empty"):
        lowbit.matmul(np.zeros((0, 64), np.float32), w)
    with pytest.raises(ValueError, match=r"\[matmul\] threads"):
        lowbit.matmul(np.zeros((1, 64), np.float32), w, threads=0)
    with pytest.raises(ValueError, match=r"\[matmul\] unknown ISA"):
        lowbit.matmul(np.zeros((1, 64), np.float32), w, isa="sse9")
    assert w.to("cpu") is w
    if not lowbit.has_cuda():  # a GPU machine runs the CUDA path (tests/test_cuda.py)
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            w.to("cuda")
    with pytest.raises(ValueError, match=r"\[dequantize\] out"):
        lowbit.dequantize(w, out=np.zeros((8, 64), np.float32))
    # a corrupted layout is caught in C++ before any kernel reads it
    w.xsrc[3] = 1000
    with pytest.raises(ValueError, match=r"\[matmul\] xsrc"):
        lowbit.matmul(np.zeros((1, 64), np.float32), w)


# checkpoints -----------------------------------------------------------------------------------------

N_EMBD, N_FF, N_HEAD, N_HEAD_KV, N_LAYER = 64, 96, 4, 2, 2


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _f16_exact(a):
    return np.asarray(a, np.float32).astype(np.float16).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    """A 2-layer Llama GGUF with SmolLM2's tokenizer and every float already float16-exact (so the HF
    export, which stores embeddings and norms as f16, loses nothing the comparison would see)."""
    from lowbit.io import GGUFValue, open_gguf, write_gguf
    from lowbit.model.default import default_model_path
    try:
        src = default_model_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    with open_gguf(src) as f:
        tok_md = {k: v for k, v in f.typed_metadata.items() if k.startswith("tokenizer.")}
        n_vocab = f.tensors["token_embd.weight"].shape[0]
    hd = N_EMBD // N_HEAD
    md = {"general.architecture": "llama", "general.type": "model", "general.name": "tiny",
          "llama.block_count": N_LAYER, "llama.context_length": 256, "llama.embedding_length": N_EMBD,
          "llama.feed_forward_length": N_FF, "llama.attention.head_count": N_HEAD,
          "llama.attention.head_count_kv": N_HEAD_KV, "llama.rope.freq_base": GGUFValue(10000.0, "float32"),
          "llama.attention.layer_norm_rms_epsilon": GGUFValue(1e-5, "float32"),
          "llama.rope.dimension_count": hd, "llama.vocab_size": n_vocab,
          "general.file_type": GGUFValue(0, "uint32"), **tok_md}
    rng = np.random.default_rng(0)

    def weight(shape, scale=0.08):
        return _f16_exact(rng.standard_t(5, size=shape) * scale)

    tensors = [("token_embd.weight", weight((n_vocab, N_EMBD), 0.05)),
               ("output_norm.weight", _f16_exact(1 + 0.1 * rng.standard_normal(N_EMBD)))]
    kv = N_HEAD_KV * hd
    for i in range(N_LAYER):
        p = f"blk.{i}."
        tensors += [(p + "attn_norm.weight", _f16_exact(1 + 0.1 * rng.standard_normal(N_EMBD))),
                    (p + "attn_q.weight", weight((N_EMBD, N_EMBD))), (p + "attn_k.weight", weight((kv, N_EMBD))),
                    (p + "attn_v.weight", weight((kv, N_EMBD))), (p + "attn_output.weight", weight((N_EMBD, N_EMBD))),
                    (p + "ffn_norm.weight", _f16_exact(1 + 0.1 * rng.standard_normal(N_EMBD))),
                    (p + "ffn_gate.weight", weight((N_FF, N_EMBD))), (p + "ffn_up.weight", weight((N_FF, N_EMBD))),
                    (p + "ffn_down.weight", weight((N_EMBD, N_FF)))]
    path = str(tmp_path_factory.mktemp("tiny") / "tiny.gguf")
    write_gguf(path, md, tensors)
    return path


def _text_tokens(tok, n):
    from lowbit.model.default import default_text_path
    ids = tok.encode(_read(default_text_path())[:20000], add_bos=None, parse_special=False)
    return list(ids[:n])


def _calibrate(gguf_path, method, **kw):
    from lowbit.calib.api import quantize_gptq, quantize_rtn
    from lowbit.calib.awq import quantize_awq
    from lowbit.calib.grid import GridSpec
    from lowbit.calib.pipeline import open_model
    ctx = open_model(gguf_path)
    f, model, tok = ctx.__enter__()
    tokens = np.array(_text_tokens(tok, 4 * 32)).reshape(4, 32)
    if method == "gptq":
        res = quantize_gptq(model, f, tokens, GridSpec(kw["bits"], kw["group"], kw["sym"]), act_order=kw["act_order"],
                            static_groups=kw["static_groups"])
    elif method == "rtn":
        res = quantize_rtn(model, f, GridSpec(kw["bits"], kw["group"], kw["sym"]))
    else:
        res = quantize_awq(model, f, tokens, 4, kw["group"], kw["zero_point"])
    return ctx, res, tok


def _dequantized_copy(model):
    """The same model with every group linear expanded to f32 (the fake-quant model on the checkpoint's
    own embeddings and norms)."""
    import dataclasses

    from lowbit.calib.sequential import float_tensor
    from lowbit.model.llama import LlamaModel
    layers = [dataclasses.replace(lw, **{n: float_tensor(getattr(lw, n).dequantize())
                                        for n in ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")})
              for lw in model.w.layers]
    return LlamaModel(model.cfg, dataclasses.replace(model.w, layers=layers))


def _ppl(model, tok, n_ctx=64, chunks=2):
    from lowbit.model.runtime import perplexity
    ids = _text_tokens(tok, n_ctx * chunks + 1)
    return perplexity(model, ids, n_ctx=n_ctx, n_chunks=chunks, bos_id=None).ppl


CASES = {
    "gptq-w4-g32-asym-actorder": ("gptq", dict(bits=4, group=32, sym=False, act_order=True, static_groups=False)),
    "gptq-w3-gall-sym": ("gptq", dict(bits=3, group=-1, sym=True, act_order=False, static_groups=True)),
    "rtn-w8-g32-sym": ("rtn", dict(bits=8, group=32, sym=True)),
    "rtn-w2-g32-asym": ("rtn", dict(bits=2, group=32, sym=False)),
    "awq-w4-g32-zp": ("awq", dict(group=32, zero_point=True)),
    "awq-w4-g32-nozp": ("awq", dict(group=32, zero_point=False)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_checkpoint_loads_and_runs_on_group_kernels(tiny_gguf, tmp_path, case):
    from lowbit.calib.export import write_hf_dir
    from lowbit.io.quantized_hf import is_quantized_checkpoint, load_quantized
    from lowbit.model.tokenizer import Tokenizer
    method, kw = CASES[case]
    ctx, res, tok = _calibrate(tiny_gguf, method, **kw)
    try:
        out = tmp_path / "ckpt"
        write_hf_dir(res, out)
        assert is_quantized_checkpoint(out) and not is_quantized_checkpoint(tmp_path)
        model, md, st = load_quantized(out)
        assert st["method"] == ("awq" if method == "awq" else "gptq")
        assert Tokenizer.from_gguf_metadata(md).encode("Hello world") == tok.encode("Hello world")
        for i, qs in enumerate(res.quantized):  # both in GGUF row order: the loader permuted Q/K back
            for name, ql in qs.items():
                w = getattr(model.w.layers[i], name)
                assert isinstance(w, lowbit.GroupQuantizedTensor) and w.bits == ql.spec.bits
                assert np.array_equal(w.dequantize(), ql.dequantize()), (i, name)
        # the model on the group kernels vs the same checkpoint with its linears expanded to f32: a prompt
        # of 40 (the panel path) then 6 decode steps (m = 1, the streaming kernels). Act-order sums in
        # another column order, and the f16 KV cache turns those last-bit differences into f16 roundings
        fake = _dequantized_copy(model)
        ids = _text_tokens(tok, 46)
        cg, cf = model.new_cache(64), fake.new_cache(64)
        lg, lf = model.forward(ids[:40], 0, cg, logits_from=0), fake.forward(ids[:40], 0, cf, logits_from=0)
        steps = [(model.forward([t], 40 + j, cg), fake.forward([t], 40 + j, cf)) for j, t in enumerate(ids[40:])]
        for a, b in [(lg, lf), *steps]:
            assert np.max(np.abs(a - b)) <= 1e-3 * np.max(np.abs(b)), float(np.max(np.abs(a - b)))
        p_group, p_fake = _ppl(model, tok), _ppl(fake, tok)
        assert abs(p_group - p_fake) <= 1e-5 * p_fake, (p_group, p_fake)
        # the calibrated model's own fake-quant path: its floats are the tiny model's f16-exact ones (AWQ's
        # rescaled norms rounded to f16 by the export), but its tied output matrix is f32, where the
        # checkpoint's is f16 and lowbit.matmul rounds the f16 matmul's input to f16 as ggml does
        p_res = _ppl(res.to_llama_model(), tok)
        assert abs(p_group - p_res) <= 2e-4 * p_res, (p_group, p_res)
    finally:
        ctx.__exit__(None, None, None)


@pytest.fixture(scope="module")
def gptq_dir(tiny_gguf, tmp_path_factory):
    from lowbit.calib.pipeline import gptq_to_dir
    out = str(tmp_path_factory.mktemp("gptq") / "out")
    gptq_to_dir(tiny_gguf, out, bits=4, group_size=32, sym=False, rtn=True)
    return out


def _copy_dir(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return str(dst)


def _edit_config(path, **changes):
    p = os.path.join(path, "config.json")
    cfg = json.loads(_read(p))
    cfg["quantization_config"].update(changes)
    with open(p, "w") as f:
        json.dump(cfg, f)


def _edit_tensors(path, drop=(), replace=None):
    from lowbit.io.safetensors import (
        SafetensorsEntry,
        open_safetensors,
        write_safetensors,
    )
    p = os.path.join(path, "model.safetensors")
    with open_safetensors(p) as st:
        arrays = {n: np.array(st.raw(n)) for n in st.tensors if n not in drop}
        dtypes = {n: st.tensors[n].dtype for n in arrays}
    for n, a in (replace or {}).items():
        arrays[n], dtypes[n] = a, {"float16": "F16", "float32": "F32", "int32": "I32"}[a.dtype.name]
    write_safetensors(p, [SafetensorsEntry(n, dtypes[n], a.shape, lambda a=a: a) for n, a in arrays.items()])


def test_checkpoint_bad_input(gptq_dir, tmp_path):
    from lowbit.io.quantized_hf import load_quantized
    lin = "model.layers.1.mlp.down_proj."
    cases = [
        (dict(quant_method="bitsandbytes"), None, "quant_method 'bitsandbytes' is not supported"),
        (dict(bits=5), None, "GPTQ bits must be one of"),
        (dict(checkpoint_format="marlin"), None, "checkpoint_format 'marlin' is not supported"),
        (dict(group_size=0), None, "group_size must be -1 or a positive integer"),
        (dict(quant_method="awq", version="gemv"), None, "AWQ version 'gemv' is not supported"),
        ({}, dict(drop=[lin + "qzeros"]), f"missing tensor {lin}qzeros"),
        (dict(desc_act=True), dict(drop=[lin + "g_idx"]), f"missing tensor {lin}g_idx"),
        ({}, dict(replace={lin + "scales": np.zeros((2, 64), np.float16)}), r"scales has shape \(2, 64\), expected \(3, 64\)"),
        ({}, dict(replace={lin + "g_idx": np.full(96, 7, np.int32)}), r"g_idx holds groups outside \[0, 3\)"),
        ({}, dict(replace={lin + "qweight": np.zeros((12, 64), np.float32)}), "is F32, expected I32"),
        ({}, dict(replace={lin + "bias": np.ones(64, np.float16)}), "has no bias on mlp.down_proj"),
    ]
    for i, (cfg, tensors, msg) in enumerate(cases):
        d = _copy_dir(gptq_dir, tmp_path / f"case{i}")
        if cfg:
            _edit_config(d, **cfg)
        if tensors:
            _edit_tensors(d, **tensors)
        with pytest.raises(CheckpointError, match=msg):
            load_quantized(d)
    with pytest.raises(CheckpointError, match="no quantization_config"):
        load_quantized(tmp_path)


def test_linear_left_in_float(gptq_dir, tmp_path):
    """A linear the quantizer skipped (AWQ's modules_to_not_convert) is a float weight; llama's Q rows
    are permuted for RoPE all the same, and an all-zero bias on o_proj is accepted and dropped."""
    from lowbit.io.hf import permute_qk
    from lowbit.io.quantized_hf import load_quantized
    p = "model.layers.0.self_attn."
    w = np.random.default_rng(5).standard_normal((N_EMBD, N_EMBD)).astype(np.float16)
    d = _copy_dir(gptq_dir, tmp_path / "float")
    _edit_tensors(d, drop=[p + "q_proj." + t for t in ("qweight", "qzeros", "scales", "g_idx")],
                  replace={p + "q_proj.weight": w, p + "o_proj.bias": np.zeros(N_EMBD, np.float16)})
    model, _, _ = load_quantized(d)
    wq = model.w.layers[0].wq
    assert isinstance(wq, lowbit.QuantizedTensor) and wq.qtype == "f16"
    np.testing.assert_array_equal(wq.dequantize(), permute_qk(w.astype(np.float32), N_HEAD, N_HEAD))
    assert isinstance(model.w.layers[0].wk, lowbit.GroupQuantizedTensor) and model.w.layers[0].bq is None


def test_gptq_v2_zero_convention(gptq_dir, tmp_path):
    """checkpoint_format gptq_v2 stores zeros as they are: the same qzeros words read one higher in v1."""
    from lowbit.io.quantized_hf import load_quantized
    v1, _, _ = load_quantized(gptq_dir)
    d = _copy_dir(gptq_dir, tmp_path / "v2")
    _edit_config(d, checkpoint_format="gptq_v2")
    v2, _, st = load_quantized(d)
    assert st["zero_offset"] == 0
    np.testing.assert_array_equal(v1.w.layers[0].w_up.zeros, v2.w.layers[0].w_up.zeros + 1)


def test_cli_perplexity_and_run_on_checkpoint(gptq_dir, tmp_path, capsys):
    from lowbit.cli import main
    assert main(["perplexity", gptq_dir, "--ctx", "64", "--chunks", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["chunks"] == 1 and np.isfinite(res["ppl"])
    assert main(["run", gptq_dir, "-p", "Hello", "-n", "3", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["generated_tokens"] <= 3
    assert main(["bench", gptq_dir, "-p", "8", "-n", "2", "--json"]) == 0
    assert main(["perplexity", str(tmp_path), "--chunks", "1"]) != 0
    assert "without a GPTQ / AWQ quantization_config" in capsys.readouterr().err


@pytest.mark.slow
def test_smollm2_gptq_rtn_checkpoint_perplexity(tmp_path, capsys):
    """`lowbit gptq --rtn` on SmolLM2 to an HF checkpoint, then `lowbit perplexity OUT` on it: equal to
    the same checkpoint with its linears dequantized to f32."""
    from lowbit.cli import main
    from lowbit.io.quantized_hf import load_quantized
    from lowbit.model.default import default_model_path
    from lowbit.model.tokenizer import Tokenizer
    try:
        default_model_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    out = str(tmp_path / "smol-gptq")
    assert main(["gptq", default_model_path(), out, "--rtn", "--bits", "4", "--group-size", "64", "--json"]) == 0
    capsys.readouterr()
    assert main(["perplexity", out, "--chunks", "1", "--json"]) == 0
    ppl = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ppl"]
    model, md, _ = load_quantized(out)
    tok = Tokenizer.from_gguf_metadata(md)
    from lowbit.model.default import default_text_path
    from lowbit.model.runtime import perplexity
    ids = tok.encode(_read(default_text_path()), add_bos=None, parse_special=False)
    bos = tok.bos_id if tok.add_bos else None
    ref = perplexity(_dequantized_copy(model), ids, n_ctx=512, n_chunks=1, bos_id=bos).ppl
    assert abs(ppl - ref) <= 1e-4 * ref, (ppl, ref)
    assert 5 < ppl < 100


def test_partial_last_group_and_quantized_lm_head(gptq_dir, tmp_path):
    """Groups of 64 over the 96-wide down projection (a partial last group of 32), sym-style zeros of
    2^(bits-1), and GPTQ's lm_head: true (a packed output matrix), re-packed by hand from the written codes."""
    from lowbit.io.gptq_awq import pack_gptq, unpack_bits
    from lowbit.io.hf import permute_qk
    from lowbit.io.quantized_hf import LINEARS, load_quantized
    from lowbit.io.safetensors import open_safetensors
    d = _copy_dir(gptq_dir, tmp_path / "g64")
    rng = np.random.default_rng(3)
    with open_safetensors(os.path.join(d, "model.safetensors")) as st:
        prefixes = [n[: -len("qweight")] for n in st.tensors if n.endswith(".qweight")]
        codes = {p: unpack_bits(np.ascontiguousarray(st.raw(p + "qweight").T), 4) for p in prefixes}
        n_vocab = st.tensors["model.embed_tokens.weight"].shape[0]
    codes["lm_head."] = rng.integers(0, 16, (n_vocab, N_EMBD)).astype(np.uint8)
    replace, want = {}, {}
    for p, q in codes.items():
        n, k = q.shape
        G = -(-k // 64)
        scales = rng.uniform(1e-3, 0.05, (n, G)).astype(np.float16).astype(np.float32)
        zeros = np.where(rng.random((n, G)) < 0.5, 8, rng.integers(1, 16, (n, G))).astype(np.float32)
        g_idx = np.arange(k) // 64
        replace.update({p + key: a for key, a in pack_gptq(q, scales, zeros, g_idx, 4).items()})
        want[p] = dequantize_grid(q, zeros, scales, g_idx)
    _edit_tensors(d, replace=replace)
    _edit_config(d, group_size=64, lm_head=True)
    model, _, st = load_quantized(d)
    assert st["group_size"] == 64 and model.w.layers[1].w_down.groups == 2
    heads = {"wq": (N_HEAD, N_HEAD), "wk": (N_HEAD, N_HEAD_KV)}
    for i, lw in enumerate(model.w.layers):
        for name, hf in LINEARS.items():
            w = want[f"model.layers.{i}.{hf}."]
            if name in heads:
                w = permute_qk(w, *heads[name])
            assert np.array_equal(getattr(lw, name).dequantize(), w), (i, name)
    assert isinstance(model.w.output, lowbit.GroupQuantizedTensor)
    assert np.array_equal(model.w.output.dequantize(), want["lm_head."])
    logits = model.forward([1, 2, 3], 0, model.new_cache(8))
    fake = _dequantized_copy(model)
    fake.w.output = lowbit.QuantizedTensor(want["lm_head."].view(np.uint8).reshape(-1), "f32", want["lm_head."].shape)
    ref = fake.forward([1, 2, 3], 0, fake.new_cache(8))
    assert np.max(np.abs(logits - ref)) <= 1e-4 * np.max(np.abs(ref))
