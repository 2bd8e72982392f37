"""Quantize and dequantize throughput per type: lowbit vs ggml's own functions (same rows, same
thread count, same run) and vs the gguf package's numpy code.

    python -m pytest bench -q -p no:randomly        (needs pytest-benchmark; ggml from llama-cpp-python)

Throughput is MB/s of float32 weights in (quantize) or out (dequantize). ggml_quantize_chunk and the
type's to_float are single-threaded calls; for T threads the rows are split in T contiguous chunks
run from T Python threads (ctypes drops the GIL), which is how llama-quantize splits work.
"""

from __future__ import annotations

import threading

import gguf
import numpy as np
import pytest

import ggml_oracle
import lowbit
from conftest import RESULTS, best_time
from inputs import make_input

QUANT_SHAPE = (512, 4096)     # 8 MiB of float32: K-quant quantize is slow in ggml (scalar search)
DEQUANT_SHAPE = (4096, 4096)  # 64 MiB of float32 out
TYPES = [t for t in lowbit.types() if t["is_quantized"] and not t["is_activation"]] + [
    lowbit.type_info("q8_k"), lowbit.type_info("f16"), lowbit.type_info("bf16")]
GGUF_PY_QUANT = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "bf16", "f16"}


def _split_run(threads: int, rows: int, fn) -> None:
    """fn(r0, r1) over `threads` contiguous row ranges, one Python thread each."""
    if threads == 1:
        fn(0, rows)
        return
    ts = [threading.Thread(target=fn, args=(rows * i // threads, rows * (i + 1) // threads)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def _ggml_quantize(row, x, threads):
    rows, k = x.shape
    gid = row["gguf_id"]
    out = np.empty((rows, ggml_oracle.row_size(gid, k)), np.uint8)
    lib = ggml_oracle._lib()
    if row["is_activation"]:
        from ggml_oracle import _FROM_FLOAT, _from_float_ref
        fn = _FROM_FLOAT(_from_float_ref(gid))
        return lambda: _split_run(threads, rows, lambda r0, r1: fn(
            x[r0:].ctypes.data, out[r0:].ctypes.data, (r1 - r0) * k))
    return lambda: _split_run(threads, rows, lambda r0, r1: lib.ggml_quantize_chunk(
        gid, x[r0:].ctypes.data, out[r0:].ctypes.data, 0, r1 - r0, k, None))


def _ggml_dequantize(row, data, k, threads):
    from ggml_oracle import _TO_FLOAT, _to_float
    rows = data.shape[0]
    out = np.empty((rows, k), np.float32)
    fn = _TO_FLOAT(_to_float(row["gguf_id"]))
    return lambda: _split_run(threads, rows, lambda r0, r1: fn(
        data[r0:].ctypes.data, out[r0:].ctypes.data, (r1 - r0) * k))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("row", TYPES, ids=lambda r: r["name"])
def test_quantize_throughput(benchmark, row, threads):
    x = make_input("normal", *QUANT_SHAPE)
    name = row["name"]
    benchmark.group = f"quantize-{threads}t"
    benchmark.pedantic(lambda: lowbit.quantize(x, name, threads=threads), rounds=5, warmup_rounds=1)
    t_lowbit = benchmark.stats.stats.min
    res = {"bench": "quantize", "type": name, "shape": f"{QUANT_SHAPE[0]}x{QUANT_SHAPE[1]}", "threads": threads,
           "lowbit_MBps": x.nbytes / t_lowbit / 1e6}
    if ggml_oracle.available():
        t = best_time(_ggml_quantize(row, x, threads), rounds=3)
        res["ggml_MBps"] = x.nbytes / t / 1e6
        res["vs_ggml"] = t / t_lowbit
    if name in GGUF_PY_QUANT and threads == 1:
        qt = gguf.GGMLQuantizationType(row["gguf_id"])
        t = best_time(lambda: gguf.quants.quantize(x, qt), rounds=2)
        res["gguf_py_MBps"] = x.nbytes / t / 1e6
        res["vs_gguf_py"] = t / t_lowbit
    benchmark.extra_info.update(res)
    RESULTS.append(res)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("row", [r for r in TYPES if r["name"] != "q8_k"], ids=lambda r: r["name"])
def test_dequantize_throughput(benchmark, row, threads):
    name = row["name"]
    x = make_input("normal", *DEQUANT_SHAPE)
    qt = lowbit.quantize(x, name)
    out = np.empty(DEQUANT_SHAPE, np.float32)  # both sides write into reused buffers: no page faults timed
    benchmark.group = f"dequantize-{threads}t"
    benchmark.pedantic(lambda: lowbit.dequantize(qt, threads=threads, out=out), rounds=7, warmup_rounds=1)
    t_lowbit = benchmark.stats.stats.min
    res = {"bench": "dequantize", "type": name, "shape": f"{DEQUANT_SHAPE[0]}x{DEQUANT_SHAPE[1]}",
           "threads": threads, "lowbit_MBps": x.nbytes / t_lowbit / 1e6}
    data = qt.data.reshape(DEQUANT_SHAPE[0], -1)
    if ggml_oracle.available() and ggml_oracle.has_to_float(row["gguf_id"]):
        t = best_time(_ggml_dequantize(row, data, DEQUANT_SHAPE[1], threads), rounds=5)
        res["ggml_MBps"] = x.nbytes / t / 1e6
        res["vs_ggml"] = t / t_lowbit
    if threads == 1:
        gqt = gguf.GGMLQuantizationType(row["gguf_id"])
        t = best_time(lambda: gguf.quants.dequantize(data, gqt), rounds=1)
        res["gguf_py_MBps"] = x.nbytes / t / 1e6
        res["vs_gguf_py"] = t / t_lowbit
    benchmark.extra_info.update(res)
    RESULTS.append(res)
