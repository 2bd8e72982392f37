"""quantize_model's streaming and safety: bounded memory, atomic output, refusals and clear errors,
the CLI, and write_gguf's LazyTensor. (Byte-identity with llama.cpp: tests/test_mixes.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import quant_models as qm
from lowbit.cli import main
from lowbit.io import LazyTensor, open_gguf, write_gguf
from lowbit.mixes import MIXES, llama_tensor_order, quantize_model

HERE = os.path.dirname(os.path.abspath(__file__))
# The child imports the lowbit this process imported (an installed wheel in CI, the source tree in
# development): a clean checkout's python/ has no compiled _core.
import lowbit  # noqa: E402

PYTHONPATH = os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(lowbit.__file__))), HERE])


@pytest.fixture(scope="module")
def llama8(tmp_path_factory):
    return qm.make_synthetic("llama8", str(tmp_path_factory.mktemp("qm")))


def test_tensor_order_is_llama_cpps():
    names = ["blk.10.attn_q.weight", "output.weight", "blk.2.ffn_up.weight", "token_embd.weight", "blk.2.attn_k.weight"]
    assert llama_tensor_order(names) == ["output.weight", "token_embd.weight", "blk.2.attn_k.weight",
                                         "blk.2.ffn_up.weight", "blk.10.attn_q.weight"]


def test_bad_settings(llama8, tmp_path):
    out = tmp_path / "o.gguf"
    with pytest.raises(ValueError, match=r"unknown mix 'Q4_K_X'; expected one of: Q4_0, .*Q4_K_M"):
        quantize_model(llama8, out, "Q4_K_X")
    with pytest.raises(ValueError, match="output_tensor_type 'q9_k' is not a type"):
        quantize_model(llama8, out, "Q4_K_M", output_tensor_type="q9_k")
    with pytest.raises(ValueError, match="threads must be >= 1"):
        quantize_model(llama8, out, "Q4_K_M", threads=0)
    with pytest.raises(TypeError, match="mix must be a str"):
        quantize_model(llama8, out, 15)
    with pytest.raises(FileNotFoundError):
        quantize_model(tmp_path / "missing.gguf", out, "Q8_0")
    assert not out.exists()


def test_refuses_to_overwrite_input(llama8, tmp_path):
    before = qm.sha256_file(llama8)
    with pytest.raises(ValueError, match="refusing to overwrite the input"):
        quantize_model(llama8, llama8, "Q8_0")
    link = tmp_path / "same.gguf"
    os.link(llama8, link)  # another name for the same file
    with pytest.raises(ValueError, match="refusing to overwrite the input"):
        quantize_model(llama8, link, "Q8_0")
    assert qm.sha256_file(llama8) == before


def test_interrupted_run_leaves_nothing(llama8, tmp_path):
    out = tmp_path / "o.gguf"
    out.write_bytes(b"previous")

    def stop(done, total):
        if done == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        quantize_model(llama8, out, "Q4_K_M", progress=stop)
    assert out.read_bytes() == b"previous"  # the old file stays until the new one is complete
    assert sorted(os.listdir(tmp_path)) == ["o.gguf"]  # no temporary file left behind


def test_requantize_and_copy(llama8, tmp_path):
    """Q8_0 -> Q4_K_M goes through float32 like llama.cpp; tensors already of the target type are copied."""
    q8 = tmp_path / "q8.gguf"
    quantize_model(llama8, q8, "Q8_0")
    again = tmp_path / "q8b.gguf"
    r = quantize_model(q8, again, "Q8_0")
    assert qm.sha256_file(q8) == qm.sha256_file(again)
    assert r["types"] == {"f32": 17, "q8_0": 58}
    r = quantize_model(q8, tmp_path / "q4km.gguf", "Q4_K_M")
    assert r["types"] == {"f32": 17, "q4_k": 49, "q6_k": 9}
    with open_gguf(tmp_path / "q4km.gguf") as f:
        assert f.metadata["general.file_type"] == MIXES["Q4_K_M"].ftype
        assert f.metadata["general.quantization_version"] == 2
        assert list(f.metadata)[-2:] == ["general.quantization_version", "general.file_type"]


def test_lazy_tensor_checks(tmp_path):
    p = tmp_path / "x.gguf"
    with pytest.raises(ValueError, match="load\\(\\) returned f32 \\(4, 32\\), the header says f32 \\(4, 64\\)"):
        write_gguf(p, {"general.architecture": "llama"},
                   [("a", LazyTensor("f32", (4, 64), lambda: np.zeros((4, 32), np.float32)))])
    assert not p.exists()
    write_gguf(p, {}, [("a", LazyTensor("f16", (2, 8), lambda: np.ones((2, 8), np.float16)))])
    with open_gguf(p) as f:
        assert f.tensors["a"].qtype == "f16"
        np.testing.assert_array_equal(f.array("a"), np.ones((2, 8), np.float32))


_RSS_SCRIPT = r"""
import re, sys
from lowbit.mixes import quantize_model
def hwm():
    return int(re.search(r"VmHWM:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
base = hwm()
r = quantize_model(sys.argv[1], sys.argv[2], sys.argv[3], threads=2)
print(base, hwm(), r["bytes_in"])
"""


def peak_rss(src: str, dst: str, mix: str) -> tuple[int, int, int]:
    """(RSS after imports, peak RSS, input bytes) of quantize_model in a fresh process (VmHWM)."""
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, src, dst, mix], env=env, check=True,
                         capture_output=True, text=True).stdout
    base, peak, size = (int(x) for x in out.split()[-3:])
    return base, peak, size


@pytest.mark.slow
def test_memory_stays_near_one_tensor(tmp_path):
    """A 52 MiB F32 model of 32 layers: peak RSS grows by about the largest tensor, not the model."""
    src = qm.synthetic_llama(str(tmp_path / "m.gguf"), n_layer=32, n_embd=256, n_ff=512, n_head=4, n_head_kv=2,
                             n_vocab=1024, tied=False, dtype="f32")
    base, peak, size = peak_rss(src, str(tmp_path / "o.gguf"), "Q4_K_M")
    largest = 1024 * 256 * 4
    assert peak - base < largest + size // 4, f"peak RSS grew by {(peak - base) >> 20} MiB for a {size >> 20} MiB model"


def test_cli(llama8, tmp_path, capsys):
    out = tmp_path / "o.gguf"
    assert main(["quantize", llama8, str(out), "q6_k", "--threads", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["mix"] == "Q6_K" and res["types"] == {"f32": 17, "q6_k": 58} and out.exists()
    assert main(["quantize", llama8, str(tmp_path / "p.gguf"), "Q5_K"]) == 1
    err = capsys.readouterr().err
    assert "unknown mix 'Q5_K'" in err and "Q5_K_M" in err
    assert main(["quantize", llama8, llama8, "Q8_0"]) == 1
    assert "refusing to overwrite the input" in capsys.readouterr().err
    assert main(["quantize", llama8, str(tmp_path / "p.gguf"), "Q8_0", "--imatrix", str(tmp_path / "none.gguf")]) == 1
    assert "none.gguf" in capsys.readouterr().err
    assert not (tmp_path / "p.gguf").exists()


def test_disk_full_leaves_nothing(llama8, tmp_path, monkeypatch, capsys):
    """An OSError while writing (ENOSPC here, raised by the 10th tensor) removes the temporary file."""
    import errno

    import lowbit
    from lowbit import mixes

    real, calls = mixes._convert, [0]

    def convert(*a, **k):
        calls[0] += 1
        if calls[0] == 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(mixes, "_convert", convert)
    out = tmp_path / "o.gguf"
    with pytest.raises(OSError, match="No space left"):
        lowbit.quantize_model(llama8, out, "Q4_K_M")
    calls[0] = 0
    assert main(["quantize", llama8, str(out), "Q4_K_M"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_rows_of_one_count_as_1d(tmp_path):
    """A (1, k) weight is 1-D to ggml (trailing dims of 1 do not count) and stays as it is, as in
    llama.cpp; checked against llama.cpp when it is installed."""
    from lowbit.io import GGUFValue

    src = str(tmp_path / "m.gguf")
    md = {"general.architecture": "llama", "llama.block_count": 1, "llama.context_length": 64,
          "llama.embedding_length": 256, "llama.feed_forward_length": 256, "llama.attention.head_count": 4,
          "llama.attention.head_count_kv": 4, "llama.attention.layer_norm_rms_epsilon": GGUFValue(1e-5, "float32"),
          "llama.vocab_size": 64}
    rng = np.random.default_rng(0)
    w = {n: rng.standard_normal(s).astype(np.float32) for n, s in [
        ("token_embd.weight", (64, 256)), ("output_norm.weight", (256,)), ("blk.0.attn_norm.weight", (256,)),
        ("blk.0.ffn_norm.weight", (256,)), ("blk.0.attn_q.weight", (256, 256)), ("blk.0.attn_k.weight", (256, 256)),
        ("blk.0.attn_v.weight", (256, 256)), ("blk.0.attn_output.weight", (256, 256)),
        ("blk.0.ffn_gate.weight", (256, 256)), ("blk.0.ffn_up.weight", (256, 256)),
        ("blk.0.ffn_down.weight", (256, 256)), ("blk.0.extra_scale.weight", (1, 256))]}
    write_gguf(src, md, list(w.items()))
    r = quantize_model(src, str(tmp_path / "ours.gguf"), "Q4_K_M")
    assert r["tensor_types"]["blk.0.extra_scale.weight"] == "f32"
    if qm.llama_cpp_available():
        qm.llama_quantize(src, str(tmp_path / "theirs.gguf"), MIXES["Q4_K_M"].ftype)
        assert qm.sha256_file(tmp_path / "ours.gguf") == qm.sha256_file(tmp_path / "theirs.gguf")
