"""GPTQ / AWQ calibration speed on SmolLM2's shapes, each with the ratio to round-to-nearest on the same
weights in the same run, and the end-to-end figure the issue asks for (set LOWBIT_BENCH_CALIB_FULL=1:
128 x 512-token samples over the whole model, seconds and peak RSS).

    python -m pytest bench/test_bench_calib.py -q -s
"""

from __future__ import annotations

import os
import resource
import time

import numpy as np
import pytest

from lowbit.calib.gptq import gptq, gptq_into_gguf
from lowbit.calib.grid import GridSpec, rtn

SHAPES = [(1536, 576), (576, 1536)]  # SmolLM2's gate/up and down


def _layer(n, k):
    rng = np.random.default_rng(n + k)
    W = (rng.standard_normal((n, k)) * 0.02).astype(np.float32)
    X = rng.standard_normal((2048, k)).astype(np.float32)
    return W, 2.0 / len(X) * (X.T @ X).astype(np.float64)


def _best(fn, reps=3):
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act_order", [False, True])
def test_bench_gptq_layer(shape, act_order):
    W, H = _layer(*shape)
    spec = GridSpec(4, 64, False)
    t_rtn = _best(lambda: rtn(spec, W))
    t_gptq = _best(lambda: gptq(W, H, spec, act_order=act_order))
    t_gguf = _best(lambda: gptq_into_gguf(W, H, "q4_0"))
    print(f"\n{shape} act_order={act_order}: rtn {t_rtn * 1e3:.1f} ms, gptq {t_gptq * 1e3:.1f} ms "
          f"({t_gptq / t_rtn:.0f}x rtn), gptq->q4_0 {t_gguf * 1e3:.1f} ms ({t_gguf / t_rtn:.0f}x rtn)")


@pytest.mark.skipif(os.environ.get("LOWBIT_BENCH_CALIB_FULL") != "1", reason="set LOWBIT_BENCH_CALIB_FULL=1")
@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_bench_calibrate_smollm2_full(method):
    from lowbit.calib.api import quantize_gptq
    from lowbit.calib.awq import quantize_awq
    from lowbit.calib.data import calibration_windows
    from lowbit.io.gguf import open_gguf
    from lowbit.model.default import default_model_path
    from lowbit.model.llama import LlamaModel
    from lowbit.model.tokenizer import Tokenizer

    with open_gguf(default_model_path()) as f:
        model, tok = LlamaModel.from_gguf(f), Tokenizer.from_gguf_metadata(f.metadata)
        tokens = calibration_windows(tok, 128, 512)
        t0 = time.perf_counter()
        if method == "gptq":
            quantize_gptq(model, f, tokens, GridSpec(4, 64, False), act_order=True)
        else:
            quantize_awq(model, f, tokens, 4, 64)
        dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{method} SmolLM2, 128 x 512 tokens: {dt:.0f} s, peak RSS {rss:.0f} MiB")
