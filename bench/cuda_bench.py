"""CUDA benchmark: lowbit's GEMV / GEMM kernels against the copy bandwidth and cuBLAS fp16, one JSON out.

    python3 bench/cuda_bench.py --out results.json [--quick]

Kernel times come from CUDA events around replays of a CUDA graph of back-to-back launches
(lowbit._cuda.bench_matmul(graph=True): no host launch cost between kernels, as in a captured decode
step; us_stream_launches is the same from a host loop of launches), cycling through enough copies of
each weight matrix that every launch reads its weights from DRAM rather than L2. Reported per
(type, shape, m):
  weight_gbps        weight bytes / kernel time
  frac_of_copy_bw    weight_gbps / device-to-device copy bandwidth (read + write bytes / time)
  vs_cublas_fp16     cuBLAS fp16 time (torch.matmul, fp16 weights, same shape) / lowbit time
  layout, kernel     the device layout (tile8 for q4_0/q4_1/q8_0, else gguf) and the kernel "auto" picks
  us_gemv            the per-row dp4a GEMV (the m <= 8 default before gemv_stream), same layout
  us_auto_gguf       the default kernel on the GGUF layout (tile8 types)
  us_<kernel>        opt-in kernels (mma: int8 tensor cores without staging, m <= 32; gemv_async, m = 1),
                     with frac_of_copy_bw_<kernel>, vs_cublas_fp16_<kernel>
  gptq_int4_g128     GPTQ-style 4-bit groups of 128 on the GPU (GroupQuantizedTensor.to("cuda"))
Progress goes to stderr; every failure is recorded in the JSON ("errors") and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback

import numpy as np

TYPES = ["q4_0", "q4_1", "q4_k", "q5_k", "q6_k", "q8_0"]
SHAPES = [(8192, 8192), (28672, 4096), (14336, 4096)]  # (n, k): square, 70B-ish FFN, Llama-3-8B FFN up
MS = [1, 4, 16, 32, 512]


def log(msg: str) -> None:
    print(f"[cuda_bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def tiled_weights(lowbit, qtype: str, n: int, k: int):
    """A valid (n, k) tensor of qtype quickly: quantize 64 random rows, repeat their bytes."""
    base = lowbit.quantize(np.random.default_rng(0).standard_normal((64, k)).astype(np.float32), qtype)
    rows = base.data.reshape(64, -1)
    data = np.ascontiguousarray(np.tile(rows, (math.ceil(n / 64), 1))[:n]).reshape(-1)
    return lowbit.QuantizedTensor(data, qtype, (n, k))


def copy_bandwidth(_cuda, torch, result: dict) -> float:
    nbytes = 1 << 30
    ms = _cuda.bench_copy(0, nbytes, 20)
    gbps = 2 * nbytes / ms / 1e6  # read + write
    result["copy_bandwidth_gbps"] = gbps
    log(f"cudaMemcpy D2D 1 GiB: {ms:.3f} ms -> {gbps:.0f} GB/s (read+write)")
    if torch is not None:
        a = torch.empty(nbytes // 2, dtype=torch.float16, device="cuda")
        b = torch.empty_like(a)
        b.copy_(a)
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(20):
            b.copy_(a)
        stop.record()
        torch.cuda.synchronize()
        tms = start.elapsed_time(stop) / 20
        result["torch_copy_bandwidth_gbps"] = 2 * nbytes / tms / 1e6
        log(f"torch copy_ 1 GiB: {tms:.3f} ms -> {result['torch_copy_bandwidth_gbps']:.0f} GB/s")
        del a, b
        torch.cuda.empty_cache()
    return gbps


def cublas_fp16_ms(torch, n: int, k: int, m: int, l2_bytes: int, iters: int) -> float:
    copies = max(2, math.ceil(3 * l2_bytes / (2 * n * k)) + 1)
    ws = [torch.randn(n, k, device="cuda", dtype=torch.float16) for _ in range(copies)]
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    for w in ws:
        torch.matmul(x, w.t())
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for i in range(iters):
        torch.matmul(x, ws[i % copies].t())
    stop.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(stop) / iters
    del ws, x
    torch.cuda.empty_cache()
    return ms


def device_copies(qt, l2_bytes: int, layout: str | None = None) -> list:
    """Enough device copies of qt that cycling through them never hits L2 (layout None: .to's default)."""
    return [qt.to("cuda", layout=layout) for _ in range(max(2, math.ceil(3 * l2_bytes / qt.nbytes) + 1))]


def lowbit_ms(_cuda, ws: list, m: int, iters: int, kernel: str = "auto", graph: bool = True) -> float:
    qt = ws[0]
    n, k = qt.shape
    x = np.random.default_rng(m).standard_normal((m, k)).astype(np.float32)
    x_dev = _cuda.DeviceBuffer(x.nbytes, 0)
    _cuda.upload(x_dev, x, 0)
    y_dev = _cuda.DeviceBuffer(4 * m * n, 0)
    return _cuda.bench_matmul([w._buffer for w in ws], qt.qtype, n, k, x_dev.ptr, m, y_dev.ptr, iters, 0, kernel,
                              qt.layout, graph)


def group_ms(_cuda, ws: list, m: int, iters: int) -> float:
    """CUDA-event time per launch of the GPTQ/AWQ group GEMV, cycling through device copies."""
    n, k = ws[0].shape
    x = np.random.default_rng(m).standard_normal((m, k)).astype(np.float32)
    x_dev = _cuda.DeviceBuffer(x.nbytes, 0)
    _cuda.upload(x_dev, x, 0)
    y_dev = _cuda.DeviceBuffer(4 * m * n, 0)
    w0 = ws[0]
    return _cuda.bench_group_matmul([(w._codes, w._params, w._unit_group, w._xsrc) for w in ws], n, k, w0.kp,
                                    w0.groups, w0.units_per_group, x_dev.ptr, m, y_dev.ptr, iters)


def group_cases(lowbit, _cuda, shapes, copy_gbps: float, l2: int, iters: int, result: dict, save) -> None:
    """GPTQ-style 4-bit, groups of 128 (act-order off), m <= 16: the group GEMV against the copy bandwidth
    (the cuBLAS ratio is filled in later, when the shape's cuBLAS times exist). Bytes: codes + (scale,
    zero) f32 per group + maps, as the kernel reads them."""
    for n, k in shapes:
        rng = np.random.default_rng(0)
        g = k // 128
        gt = lowbit.GroupQuantizedTensor.from_grid(rng.integers(0, 16, (n, k)), rng.random((n, g)) * 0.01,
                                                   rng.integers(0, 16, (n, g)).astype(np.float32), None, 4, 128)
        copies = max(2, math.ceil(3 * l2 / (n * k // 2)) + 1)
        ws = [gt.to("cuda") for _ in range(copies)]
        for m in (1, 4, 16):
            case = {"qtype": "gptq_int4_g128", "n": n, "k": k, "m": m, "weight_bytes": ws[0].nbytes,
                    "kernel": "gemv_stream" + (" x%d" % ((m + 7) // 8) if m > 8 else "")}
            try:
                ms = group_ms(_cuda, ws, m, iters)
                case["us"] = ms * 1e3
                case["weight_gbps"] = ws[0].nbytes / ms / 1e6
                case["frac_of_copy_bw"] = case["weight_gbps"] / copy_gbps
                log(f"gptq4 g128 {n}x{k} m={m:3d}: {case['us']:8.1f} us {case['weight_gbps']:6.0f} GB/s "
                    f"({100 * case['frac_of_copy_bw']:.0f}% of copy)")
            except Exception:
                case["error"] = traceback.format_exc()
                result["errors"].append({"step": f"gptq4 {n}x{k} m={m}", "error": case["error"]})
            result["cases"].append(case)
            save()
        del ws


def api_call_overhead(lowbit, torch, result: dict) -> None:
    """Wall time per lowbit.matmul call with a torch CUDA x and a reused out= (DLPack in and out, stream
    lookup, argument checks): the Python cost a model pays per matmul, against the kernel time."""
    qt = tiled_weights(lowbit, "q4_0", 4096, 4096)
    wc = qt.to("cuda")
    x = torch.randn(1, 4096, device="cuda")
    y = lowbit.matmul(x, wc)
    torch.cuda.synchronize()
    calls = 200
    t = time.perf_counter()
    for _ in range(calls):
        lowbit.matmul(x, wc, out=y)
    torch.cuda.synchronize()
    result["api_call_us_q4_0_4096x4096_m1"] = (time.perf_counter() - t) / calls * 1e6
    log(f"lowbit.matmul call (torch x, out=, q4_0 4096x4096, m=1): {result['api_call_us_q4_0_4096x4096_m1']:.1f} us")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="cuda_bench.json")
    ap.add_argument("--quick", action="store_true", help="first shape only, fewer iterations")
    ap.add_argument("--time-budget", type=float, default=150.0, help="seconds; later cases are skipped past it")
    ap.add_argument("--ms", default=",".join(map(str, MS)), help="comma-separated activation row counts")
    ap.add_argument("--types", default=",".join(TYPES), help="comma-separated weight types")
    args = ap.parse_args()
    t0 = time.time()
    result: dict = {"errors": [], "cases": []}

    def save():
        result["elapsed_s"] = round(time.time() - t0, 1)
        with open(args.out + ".tmp", "w") as f:
            json.dump(result, f, indent=1)
        os.replace(args.out + ".tmp", args.out)

    try:
        import lowbit
        from lowbit import cuda as lcuda
        _cuda = lcuda._cuda
        if not lowbit.has_cuda():
            raise RuntimeError(f"no usable CUDA: {lcuda._unavailable_reason()}")
        info = _cuda.device_info(0)
        result["device"] = {**info, "compute_capability": list(info["compute_capability"])}
        log(f"GPU: {info['name']} cc {info['compute_capability']} {info['multiprocessors']} SMs "
            f"L2 {info['l2_bytes'] >> 20} MiB")
    except Exception:
        result["errors"].append({"step": "setup", "error": traceback.format_exc()})
        log(f"setup failed: {result['errors'][-1]['error']}")
        save()
        return 1
    try:
        import torch
        if not torch.cuda.is_available():
            torch = None
    except Exception:
        torch = None
        result["errors"].append({"step": "import torch", "error": traceback.format_exc(limit=1)})

    copy_gbps = float("nan")
    try:
        copy_gbps = copy_bandwidth(_cuda, torch, result)
    except Exception:
        result["errors"].append({"step": "copy bandwidth", "error": traceback.format_exc()})
    save()

    try:
        if torch is not None:
            api_call_overhead(lowbit, torch, result)
    except Exception:
        result["errors"].append({"step": "api call", "error": traceback.format_exc()})

    l2 = int(info["l2_bytes"])
    mma_types = set(_cuda.gemv_mma_types()) if hasattr(_cuda, "gemv_mma_types") else set()
    async_types = set(_cuda.gemv_async_types()) if hasattr(_cuda, "gemv_async_types") else set()
    shapes = SHAPES[:1] if args.quick else SHAPES
    ms_list = [int(v) for v in args.ms.split(",")]
    iters = 20 if args.quick else 50
    types = args.types.split(",")
    try:  # first: short, and not subject to the time budget
        group_cases(lowbit, _cuda, shapes, copy_gbps, l2, iters, result, save)
    except Exception:
        result["errors"].append({"step": "group cases", "error": traceback.format_exc()})
    iters = 20 if args.quick else 50
    cublas: dict = {}
    for n, k in shapes:
        for m in sorted(set(ms_list) | {1, 16}):
            if torch is None:
                break
            try:
                cublas[(n, k, m)] = cublas_fp16_ms(torch, n, k, m, l2, iters)
                log(f"cuBLAS fp16 n={n} k={k} m={m}: {cublas[(n, k, m)] * 1e3:.1f} us")
            except Exception:
                result["errors"].append({"step": f"cublas {n}x{k} m={m}", "error": traceback.format_exc()})
        for qtype in types:
            if time.time() - t0 > args.time_budget:
                result["errors"].append({"step": f"{qtype} {n}x{k}", "error": "skipped: time budget spent"})
                continue
            try:
                qt = tiled_weights(lowbit, qtype, n, k)
                ws = device_copies(qt, l2)
                ws_gguf = device_copies(qt, l2, "gguf") if ws[0].layout != "gguf" else ws
            except Exception:
                result["errors"].append({"step": f"quantize {qtype} {n}x{k}", "error": traceback.format_exc()})
                continue
            for m in ms_list:
                case = {"qtype": qtype, "n": n, "k": k, "m": m, "weight_bytes": qt.nbytes, "layout": ws[0].layout,
                        "kernel": "gemv_stream" if m <= 8 else "mma_async" if qtype in mma_types and m <= 32
                        else "gemv" if m <= _cuda.gemv_max_rows(qtype) else "gemm"}
                try:
                    ms = lowbit_ms(_cuda, ws, m, iters if m < 512 else max(5, iters // 5))
                    case["us"] = ms * 1e3
                    case["weight_gbps"] = qt.nbytes / ms / 1e6
                    case["frac_of_copy_bw"] = case["weight_gbps"] / copy_gbps
                    case["tflops"] = 2.0 * m * n * k / ms / 1e9
                    if m <= 8:  # host-launched stream of kernels instead of graph replays (adds launch gaps)
                        case["us_stream_launches"] = lowbit_ms(_cuda, ws, m, iters, graph=False) * 1e3
                    if 8 < m <= 16:  # gemv_stream past auto's range, against mma_async there
                        try:
                            case["us_gemv_stream"] = us = lowbit_ms(_cuda, ws, m, iters, "gemv_stream") * 1e3
                            if (n, k, m) in cublas:
                                case["vs_cublas_fp16_gemv_stream"] = cublas[(n, k, m)] * 1e3 / us
                        except RuntimeError as e:  # x's 16 rows over k do not fit its shared memory
                            if "NotSupported" not in str(e):
                                raise
                            case["us_gemv_stream"] = None
                    if m <= 32:  # the per-row dp4a GEMV (the default at m <= 8 before gemv_stream)
                        case["us_gemv"] = lowbit_ms(_cuda, ws, m, iters, "gemv") * 1e3
                    if ws_gguf is not ws and m <= 32:  # the same default kernel on the GGUF layout
                        case["us_auto_gguf"] = lowbit_ms(_cuda, ws_gguf, m, iters) * 1e3
                    opt_in = [name for name, types, max_m in (("mma", mma_types, 32), ("gemv_async", async_types, 1))
                              if qtype in types and m <= max_m]
                    for name in opt_in:  # candidates for the default, opt-in until measured faster
                        case[f"us_{name}"] = us = lowbit_ms(_cuda, ws, m, iters, name) * 1e3
                        case[f"frac_of_copy_bw_{name}"] = qt.nbytes / (us * 1e-3) / 1e6 / copy_gbps
                        if (n, k, m) in cublas:
                            case[f"vs_cublas_fp16_{name}"] = cublas[(n, k, m)] * 1e3 / us
                    if (n, k, m) in cublas:
                        case["cublas_fp16_us"] = cublas[(n, k, m)] * 1e3
                        case["vs_cublas_fp16"] = cublas[(n, k, m)] / ms
                    log(f"{qtype:5s} {n}x{k} m={m:3d}: {case['us']:8.1f} us {case['weight_gbps']:6.0f} GB/s "
                        f"({100 * case['frac_of_copy_bw']:.0f}% of copy) "
                        f"x{case.get('vs_cublas_fp16', float('nan')):.2f} vs cuBLAS fp16"
                        + "".join(f"; {name} {case[f'us_{name}']:.1f} us" for name in opt_in + ["gemv_stream"]
                                  if case.get(f"us_{name}") is not None))
                except Exception:
                    case["error"] = traceback.format_exc()
                    result["errors"].append({"step": f"{qtype} {n}x{k} m={m}", "error": case["error"]})
                result["cases"].append(case)
                save()
            del ws, ws_gguf
    for case in result["cases"]:  # the group cases ran before cuBLAS was timed
        key = (case["n"], case["k"], case["m"])
        if case["qtype"].startswith("gptq") and key in cublas and "us" in case:
            case["cublas_fp16_us"] = cublas[key] * 1e3
            case["vs_cublas_fp16"] = cublas[key] * 1e3 / case["us"]
    save()
    log(f"done in {time.time() - t0:.0f} s, {len(result['errors'])} error(s) -> {args.out}")
    return 0 if not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
