"""The CUDA backend: every kernel against the CPU reference, DLPack and streams, and bad input.

Tests marked `cuda` need a GPU and skip without one; the others check the behaviour on a machine
without CUDA (has_cuda() False, clear errors) and run everywhere.

References: dequantize must equal the CPU's lowbit.dequantize bit for bit. matmul is compared with
the float64 product of the CPU-dequantized weights and x (the GPU does not quantize activations):
GEMV (m <= 8) accumulates in fp32, GEMM rounds x and W tiles to fp16 (tensor cores) and accumulates
in fp32. It is also compared with the CPU's lowbit.matmul, which quantizes x to q8_0/q8_1/q8_K.
LOWBIT_CUDA_TEST_QUICK=1 trims the shapes (for compute-sanitizer runs, which are ~100x slower).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import numpy as np
import pytest

import lowbit
from lowbit import cuda as lcuda

HAS_CUDA = lowbit.has_cuda()
QUICK = os.environ.get("LOWBIT_CUDA_TEST_QUICK") == "1"
needs_gpu = pytest.mark.skipif(not HAS_CUDA, reason="no usable CUDA GPU (or lowbit built without _cuda)")

# Types with CUDA kernels: every weight type of the table (q8_1 / q8_K are activation-only).
WEIGHT_TYPES = [t["name"] for t in lowbit.types() if not t["is_activation"]]

# Named tolerances: max |y - reference| over the matching element of |x| @ |W|.T (the sum of the
# magnitudes of the products: a scale that does not vanish when a dot product cancels out).
TOL_GEMV = 2e-5        # fp32 products and sums, order differs from numpy's
TOL_GEMV_Q8 = 2e-2     # integer GEMV: x rounded to 8 bits per value (blocks of 32), vs the fp32 x
TOL_SAME_ALGO = 5e-5   # the same integer algorithm on host and GPU / vs its numpy emulation: fp32 rounding only
TOL_GEMM = 3e-3        # x and W rounded to fp16 (2^-11 relative each), fp32 accumulation
# Against the CPU's lowbit.matmul, whose activations are quantized to 8 bits per value.
TOL_VS_CPU_MATMUL = 3e-2

M_GEMV = [1, 2, 3, 4, 5, 7, 8]
M_GEMM = [9, 16, 17, 31, 33] if QUICK else [9, 16, 17, 31, 32, 33, 513]


def _k_values(qtype: str) -> list[int]:
    """One block, an odd number of blocks, and (for block size 1) a k that is no multiple of 16."""
    bs = lowbit.type_info(qtype)["block_size"]
    if bs == 1:
        return [37, 64] if QUICK else [1, 37, 64, 300]
    # 16 * 32 / 4 * 256: rows of 16-byte multiples (8 for q6_K), where the integer GEMV stages its
    # weights through shared memory; the others take its direct-load path
    aligned = 512 if bs == 32 else 1024
    return [bs, 3 * bs, aligned] if QUICK else [bs, 3 * bs, 7 * bs, aligned]


N_VALUES = [5, 67] if QUICK else [1, 5, 67, 130]  # not multiples of the 4-row GEMV block or the 64-row tile


def _weights(qtype: str, n: int, k: int, seed: int = 0):
    rng = np.random.default_rng([seed, n, k])
    w = rng.standard_normal((n, k)).astype(np.float32)
    return lowbit.quantize(w, qtype)


def _rel_err(y, ref, x, wd) -> float:
    """x: (..., k); wd: (n, k) dequantized weights; y, ref: (..., n)."""
    scale = np.abs(x.astype(np.float64)) @ np.abs(wd.astype(np.float64)).T
    diff = np.abs(np.asarray(y, dtype=np.float64) - ref)
    return float(np.max(diff / np.maximum(scale, 1e-30)))


# ---- without a GPU (run everywhere) ----

@pytest.mark.skipif(HAS_CUDA, reason="a usable GPU is present")
def test_no_gpu_has_cuda_is_false_and_to_cuda_raises():
    assert lowbit.has_cuda() is False
    qt = _weights("q4_0", 4, 64)
    with pytest.raises(RuntimeError, match=r"\[to\] CUDA is not available"):
        qt.to("cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        qt.to("cuda:0")


def test_device_strings():
    qt = _weights("q8_0", 2, 32)
    assert qt.to("cpu") is qt and qt.device == "cpu"
    for bad in ("gpu", "cuda:x", "cuda:-1", "", "cpu:0"):
        with pytest.raises(ValueError, match="device must be"):
            qt.to(bad)


def test_import_and_errors_without_the_extension():
    # A build without nvcc has no lowbit._cuda: the package imports, has_cuda() is False, and a
    # CUDA call says why.
    code = (
        "import sys; sys.modules['lowbit._cuda'] = None\n"
        "import numpy as np, lowbit\n"
        "assert lowbit.has_cuda() is False\n"
        "qt = lowbit.quantize(np.ones((2, 32), np.float32), 'q4_0')\n"
        "try:\n"
        "    qt.to('cuda')\n"
        "except RuntimeError as e:\n"
        "    assert 'built without its CUDA extension' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


class _FakeCudaTensor:
    """A DLPack producer that claims to live on cuda:0 (no memory behind it)."""

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, stream=None):
        raise AssertionError("must not be consumed")


def test_cuda_x_with_cpu_weights_is_a_clear_error():
    qt = _weights("q4_0", 4, 64)
    with pytest.raises(ValueError, match=r"\[matmul\] x is on the GPU but w is on the CPU"):
        lowbit.matmul(_FakeCudaTensor(), qt)
    with pytest.raises(ValueError, match="GPU tensors only"):
        lowbit.matmul(np.ones((1, 64), np.float32), qt, stream=0)


needs_extension = pytest.mark.skipif(lcuda._cuda is None, reason="lowbit built without _cuda")


@needs_extension
@pytest.mark.parametrize("qtype", WEIGHT_TYPES)
def test_decoders_host_build_equal_cpu_dequantize(qtype):
    # The GPU kernels' decode16 functions, compiled for the host: every format's indexing and
    # rounding checked bit for bit on machines without a GPU.
    from inputs import DISTRIBUTIONS, make_input
    bs = lowbit.type_info(qtype)["block_size"]
    for dist in DISTRIBUTIONS:
        for k in ([1, 17, 64] if bs == 1 else [bs, 5 * bs]):
            qt = lowbit.quantize(make_input(dist, 3, k), qtype)
            rows = qt.data.reshape(3, -1)
            got = lcuda._cuda.decode_host(qtype, rows, k)
            np.testing.assert_array_equal(got, lowbit.dequantize(qt), err_msg=f"{qtype} {dist} k={k}")
    # random bytes: every bit pattern of scales and quants (f16 fields may hold NaN/inf; NaN payloads
    # are not compared)
    if bs > 1:
        info = lowbit.type_info(qtype)
        raw = np.random.default_rng(7).integers(0, 256, (4, 3 * info["type_size"]), dtype=np.uint8)
        qt = lowbit.QuantizedTensor(raw.reshape(-1), qtype, (4, 3 * bs))
        got = lcuda._cuda.decode_host(qtype, raw, 3 * bs)
        np.testing.assert_array_equal(got, lowbit.dequantize(qt))


@needs_extension
@pytest.mark.parametrize("versioned", [False, True])
def test_dlpack_capsules_without_a_gpu(versioned):
    # Export (what torch/cupy.from_dlpack receive) and import (what matmul reads) of DLPack capsules,
    # on a fake device pointer: shapes, strides, dtype, and the owner released when the capsule dies.
    import weakref

    class Owner:
        pass

    owner = Owner()
    alive = weakref.ref(owner)
    cap = lcuda._cuda.dlpack_export(owner, 4096, 0, [2, 3, 5], versioned)
    del owner
    assert alive() is not None  # the capsule keeps the memory's owner
    view = lcuda._cuda.dlpack_view(cap)
    assert view["ptr"] == 4096 and view["shape"] == (2, 3, 5) and view["strides"] == (15, 5, 1)
    assert (view["device_type"], view["device_id"]) == (2, 0)
    assert (view["dtype_code"], view["dtype_bits"], view["dtype_lanes"]) == (2, 32, 1)
    assert lcuda._is_row_major(view["shape"], view["strides"])
    del cap, view
    gc.collect()
    assert alive() is None
    import ctypes
    new_capsule = ctypes.pythonapi.PyCapsule_New
    new_capsule.restype = ctypes.py_object
    new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    with pytest.raises(ValueError, match="already consumed"):
        lcuda._cuda.dlpack_view(new_capsule(1, b"used_dltensor", None))


@needs_extension
@pytest.mark.skipif(HAS_CUDA, reason="a usable GPU is present")
def test_bindings_without_a_gpu_raise_runtime_errors():
    # Each binding the Python side calls, with the argument types it passes: a CUDA error
    # (RuntimeError naming the operation), never a pybind11 signature TypeError or a crash.
    c = lcuda._cuda
    host = np.zeros(4, np.float32)
    calls = {
        "DeviceBuffer": lambda: c.DeviceBuffer(16, 0),
        "download": lambda: c.download(0, 0, host, 0),
        "stream_wait": lambda: c.stream_wait(0, 0, 1),
        "synchronize": lambda: c.synchronize(0, 0),
        "memory_info": lambda: c.memory_info(0),
        "bench_copy": lambda: c.bench_copy(0, 1 << 20, 1),
        "device_info": lambda: c.device_info(0),
    }
    for name, call in calls.items():
        with pytest.raises(RuntimeError, match="CUDA error"):
            call()
    assert c.device_count() == 0 and c.device_error()
    assert c.gemv_max_rows("q4_k") == 32 and c.gemv_max_rows("q5_0") == 8
    with pytest.raises(ValueError, match="no CUDA kernels"):
        c.gemv_max_rows("q8_k")


GEMV_Q8_TYPES = lcuda._cuda.gemv_q8_types() if lcuda._cuda is not None else []


def _q8_blocks_emulated(x: np.ndarray) -> np.ndarray:
    """x (m, k) f32 as the integer GEMV sees it: per block of 32, d = amax/127, q = rint(x/d), x' = q*d."""
    m, k = x.shape
    xb = x.reshape(m, k // 32, 32)
    d = (np.abs(xb).max(axis=2, keepdims=True) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = np.rint(xb * inv)
    return (q.astype(np.float64) * d.astype(np.float64)).reshape(m, k)


@needs_extension
@pytest.mark.parametrize("qtype", ["q4_0", "q4_1", "q8_0", "q4_k", "q5_k", "q6_k"])
def test_integer_gemv_host_build(qtype):
    # The integer GEMV's dot32 (unit indexing, nibble/bit unpacking, dp4a, scale algebra) run on the
    # host: equal to the float64 product of the dequantized weights and the 8-bit activations.
    from inputs import make_input
    assert qtype in GEMV_Q8_TYPES
    bs = lowbit.type_info(qtype)["block_size"]
    for dist in ("normal", "heavy_tailed", "one_outlier", "zeros", "integers"):
        for k in (bs, 3 * bs):
            qt = lowbit.quantize(make_input(dist, 5, k, seed=1), qtype)
            x = make_input("normal" if dist == "zeros" else dist, 3, k, seed=2)
            wd = lowbit.dequantize(qt)
            y = lcuda._cuda.gemv_q8_host(qtype, qt.data.reshape(5, -1), x)
            ref_q8 = _q8_blocks_emulated(x) @ wd.astype(np.float64).T
            assert _rel_err(y, ref_q8, x, wd) <= TOL_SAME_ALGO, f"{qtype} {dist} k={k}"
            if dist == "normal":  # 8-bit activations lose an outlier block's small values, by design
                assert _rel_err(y, x.astype(np.float64) @ wd.astype(np.float64).T, x, wd) <= TOL_GEMV_Q8
                assert _rel_err(y, lowbit.matmul(x, qt).astype(np.float64), x, wd) <= TOL_VS_CPU_MATMUL


MMA_TYPES = ["q4_0", "q4_1", "q8_0"]  # kernel="mma" (int8 tensor cores, gemv_mma.cuh)
M_MMA = [1, 2, 9, 32] if QUICK else [1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 31, 32]
# n: not multiples of the 16-row tile; k: 1, 3, 5, 7 units (not multiples of the 4 warps that split k), 16
N_MMA = [5, 17] if QUICK else [1, 5, 17, 33]
K_MMA = [96, 224] if QUICK else [32, 96, 160, 224, 512]


@needs_extension
@pytest.mark.parametrize("qtype", MMA_TYPES)
def test_mma_gemv_host_build(qtype):
    # The tensor-core kernel's per-lane code (fragment loads, bounds, scaling, split k) run for 32
    # lanes with a host model of mma.m16n8k32 written from the PTX fragment layout: equal to the
    # dp4a GEMV's host build (the same integer sums, fp32 rounding order aside).
    from inputs import make_input
    assert qtype in lcuda._cuda.gemv_mma_types()
    for dist in ("normal", "heavy_tailed", "integers"):
        for m in ([1, 8, 9, 32] if dist != "normal" else M_MMA):
            for n in N_MMA:
                for k in K_MMA:
                    if dist != "normal" and (n, k) not in ((17, 96), (33, 224)):
                        continue
                    qt = lowbit.quantize(make_input(dist, n, k, seed=1), qtype)
                    x = make_input(dist, m, k, seed=2)
                    wd = lowbit.dequantize(qt)
                    y = lcuda._cuda.gemv_mma_host(qtype, qt.data.reshape(n, -1), x)
                    assert y.shape == (m, n)
                    y_q8 = lcuda._cuda.gemv_q8_host(qtype, qt.data.reshape(n, -1), x)
                    err = _rel_err(y, y_q8.astype(np.float64), x, wd)
                    assert err <= TOL_SAME_ALGO, f"{qtype} {dist} m={m} n={n} k={k}: vs gemv_q8_host {err:.2e}"
                    ref_q8 = _q8_blocks_emulated(x) @ wd.astype(np.float64).T
                    assert _rel_err(y, ref_q8, x, wd) <= TOL_SAME_ALGO, f"{qtype} {dist} m={m} n={n} k={k}"


@needs_extension
def test_mma_host_build_rejects_bad_input():
    qt = _weights("q4_0", 3, 64)
    with pytest.raises(ValueError, match="bad shapes"):
        lcuda._cuda.gemv_mma_host("q4_0", qt.data.reshape(3, -1), np.zeros((33, 64), np.float32))
    qk = _weights("q4_k", 3, 256)
    with pytest.raises(ValueError, match="no mma kernel"):
        lcuda._cuda.gemv_mma_host("q4_k", qk.data.reshape(3, -1), np.zeros((1, 256), np.float32))


ASYNC_TYPES = ["q4_0", "q4_1", "q8_0", "q4_k", "q5_k"]  # kernel="gemv_async" (gemv_async.cuh)


@needs_extension
def test_opt_in_kernel_types():
    # kernel="mma" needs one scale per 32 weights; "gemv_async" 16-byte spans (not q6_K's 840 bytes)
    assert sorted(lcuda._cuda.gemv_mma_types()) == sorted(MMA_TYPES)
    assert sorted(lcuda._cuda.gemv_async_types()) == sorted(ASYNC_TYPES)
    assert {"mma", "mma_async", "gemv_async"} <= set(lcuda._KERNELS)


# ---- on a GPU ----

@pytest.mark.cuda
@needs_gpu
def test_kernel_table_covers_every_weight_type():
    assert sorted(lcuda._cuda.kernel_types()) == sorted(WEIGHT_TYPES)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("qtype", WEIGHT_TYPES)
def test_roundtrip_bytes_and_dequantize_bit_exact(qtype):
    for k in _k_values(qtype):
        for n in (1, 3, 5):
            qt = _weights(qtype, n, k)
            wc = qt.to("cuda")
            assert wc.device == "cuda:0" and wc.qtype == qtype and wc.shape == (n, k)
            np.testing.assert_array_equal(wc.to("cpu").data, qt.data)
            y = lowbit.dequantize(wc)
            assert isinstance(y, lcuda.CudaArray) and y.shape == (n, k)
            np.testing.assert_array_equal(y.numpy(), lowbit.dequantize(qt), err_msg=f"{qtype} n={n} k={k}")


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("qtype", WEIGHT_TYPES)
def test_dequantize_nd_and_special_values(qtype):
    bs = lowbit.type_info(qtype)["block_size"]
    k = max(bs, 32)
    w = np.zeros((2, 3, k), np.float32)
    w[1] = np.linspace(-3e3, 3e3, 3 * k, dtype=np.float32).reshape(3, k)
    qt = lowbit.quantize(w, qtype)
    np.testing.assert_array_equal(np.asarray(qt.to("cuda").dequantize()), lowbit.dequantize(qt))


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("qtype", WEIGHT_TYPES)
@pytest.mark.parametrize("m", M_GEMV + M_GEMM)
def test_matmul_against_cpu_reference(qtype, m):
    gemv = m <= lcuda._cuda.gemv_max_rows(qtype)
    tol = TOL_GEMM if not gemv else TOL_GEMV_Q8 if qtype in GEMV_Q8_TYPES else TOL_GEMV
    for k in _k_values(qtype):
        for n in N_VALUES:
            qt = _weights(qtype, n, k, seed=m)
            x = np.random.default_rng([m, n, k]).standard_normal((m, k)).astype(np.float32)
            wd = lowbit.dequantize(qt)
            ref = x.astype(np.float64) @ wd.astype(np.float64).T
            y = lowbit.matmul(x, qt.to("cuda"))
            assert isinstance(y, np.ndarray) and y.shape == (m, n) and y.dtype == np.float32
            err = _rel_err(y, ref, x, wd)
            assert err <= tol, f"{qtype} m={m} n={n} k={k}: rel err {err:.2e} > {tol:.0e}"
            err_cpu = _rel_err(y, lowbit.matmul(x, qt).astype(np.float64), x, wd)
            assert err_cpu <= TOL_VS_CPU_MATMUL, f"{qtype} m={m} n={n} k={k}: vs CPU matmul {err_cpu:.2e}"
            if gemv and qtype in GEMV_Q8_TYPES:  # the GPU integer GEMV against its host build
                y_host = lcuda._cuda.gemv_q8_host(qtype, qt.data.reshape(n, -1), x).astype(np.float64)
                err = _rel_err(y, y_host, x, wd)
                assert err <= TOL_SAME_ALGO, f"{qtype} m={m} n={n} k={k}: vs host build {err:.2e}"
                y_direct = lcuda.matmul(x, qt.to("cuda"), kernel="gemv_unstaged")
                err = _rel_err(y_direct, y_host, x, wd)
                assert err <= TOL_SAME_ALGO, f"{qtype} m={m} n={n} k={k}: gemv_unstaged vs host {err:.2e}"
            if m <= 8:  # the fp32 GEMV exists for every type
                y32 = lcuda.matmul(x, qt.to("cuda"), kernel="gemv_f32")
                err = _rel_err(y32, ref, x, wd)
                assert err <= TOL_GEMV, f"{qtype} m={m} n={n} k={k}: gemv_f32 {err:.2e}"



@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("qtype", WEIGHT_TYPES)
def test_gemm_kernel_at_small_m(qtype):
    # The tensor-core kernel on 1..8 rows too (auto uses GEMV there): partial tiles in m.
    k = _k_values(qtype)[-1]
    qt = _weights(qtype, 67, k)
    wd = lowbit.dequantize(qt)
    for m in (1, 3, 8):
        x = np.random.default_rng(m).standard_normal((m, k)).astype(np.float32)
        y = lcuda.matmul(x, qt.to("cuda"), kernel="gemm")
        err = _rel_err(y, x.astype(np.float64) @ wd.astype(np.float64).T, x, wd)
        assert err <= TOL_GEMM, f"{qtype} m={m}: {err:.2e}"


@pytest.mark.cuda
@needs_gpu
def test_matmul_nd_x_and_float16_numpy():
    qt = _weights("q4_k", 33, 512)
    wc = qt.to("cuda")
    x = np.random.default_rng(1).standard_normal((2, 3, 512)).astype(np.float32)
    wd = lowbit.dequantize(qt)
    ref = x.astype(np.float64) @ wd.astype(np.float64).T
    y = lowbit.matmul(x, wc)
    assert y.shape == (2, 3, 33) and _rel_err(y, ref, x, wd) <= TOL_GEMV_Q8
    x16 = x.astype(np.float16)
    y16 = lowbit.matmul(x16, wc)
    assert _rel_err(y16, x16.astype(np.float64) @ wd.astype(np.float64).T, x16, wd) <= TOL_GEMV_Q8


@pytest.mark.cuda
@needs_gpu
def test_large_gemv_and_gemm_shapes():
    # Several thousand rows: many thread blocks, and k long enough for the lanes to loop.
    for qtype in ("q4_0", "q4_k", "q6_k"):
        qt = _weights(qtype, 1000 if QUICK else 4099, 2048)
        wc = qt.to("cuda")
        wd = lowbit.dequantize(qt)
        for m in (1, 8, 70):
            x = np.random.default_rng(m).standard_normal((m, 2048)).astype(np.float32)
            err = _rel_err(lowbit.matmul(x, wc), x.astype(np.float64) @ wd.astype(np.float64).T, x, wd)
            assert err <= (TOL_GEMV_Q8 if m <= lcuda._cuda.gemv_max_rows(qtype) else TOL_GEMM), f"{qtype} m={m}"


# ---- DLPack, streams ----

def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    return torch


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("m", [1, 5, 40])
def test_torch_dlpack_in_and_out(m):
    torch = _torch_cuda()
    qt = _weights("q4_0", 70, 256)
    wc = qt.to("cuda")
    x = torch.randn(m, 256, device="cuda", dtype=torch.float32)
    y = lowbit.matmul(x, wc)
    assert isinstance(y, lcuda.CudaArray) and y.shape == (m, 70)
    yt = torch.from_dlpack(y)
    assert yt.device.type == "cuda" and yt.shape == (m, 70) and yt.dtype == torch.float32
    assert yt.data_ptr() == y.ptr  # no copy
    want = lowbit.matmul(x.cpu().numpy(), wc)
    np.testing.assert_allclose(yt.cpu().numpy(), want, rtol=0, atol=0)
    # x on the CPU through DLPack gives numpy back
    np.testing.assert_array_equal(lowbit.matmul(x.cpu(), wc), want)


@pytest.mark.cuda
@needs_gpu
def test_torch_side_stream_and_out_buffer():
    torch = _torch_cuda()
    qt = _weights("q5_k", 300, 1024)
    wc = qt.to("cuda")
    s = torch.cuda.Stream()
    x_host = np.random.default_rng(3).standard_normal((4, 1024)).astype(np.float32)
    want = lowbit.matmul(x_host, wc)
    with torch.cuda.stream(s):
        x = torch.from_numpy(x_host).to("cuda", non_blocking=True)  # pending on s
        y = lowbit.matmul(x, wc)  # runs on s (torch's current stream)
        y2 = lowbit.matmul(x, wc, out=y)  # reuse the output buffer
        assert y2 is y
        yt = torch.from_dlpack(y) * 1.0  # consumed on s
    s.synchronize()
    np.testing.assert_array_equal(yt.cpu().numpy(), want)
    # explicit stream argument (a torch stream object or a raw handle)
    y3 = lowbit.matmul(torch.from_numpy(x_host).cuda(), wc, stream=s)
    y4 = lowbit.matmul(torch.from_numpy(x_host).cuda(), wc, stream=s.cuda_stream)
    np.testing.assert_array_equal(y3.numpy(), want)
    np.testing.assert_array_equal(y4.numpy(), want)


@pytest.mark.cuda
@needs_gpu
def test_torch_bad_inputs():
    torch = _torch_cuda()
    wc = _weights("q8_0", 8, 64).to("cuda")
    with pytest.raises(TypeError, match="float32"):
        lowbit.matmul(torch.zeros(2, 64, device="cuda", dtype=torch.float16), wc)
    with pytest.raises(ValueError, match="k=64"):
        lowbit.matmul(torch.zeros(2, 32, device="cuda"), wc)
    with pytest.raises(ValueError, match="C-contiguous"):
        lowbit.matmul(torch.zeros(64, 2, device="cuda").t(), wc)
    with pytest.raises(ValueError, match="out must have shape"):
        lowbit.matmul(torch.zeros(2, 64, device="cuda"), wc,
                      out=lowbit.matmul(torch.zeros(3, 64, device="cuda"), wc))
    if torch.cuda.device_count() > 1:
        with pytest.raises(ValueError, match="cuda:1 but w is on cuda:0"):
            lowbit.matmul(torch.zeros(2, 64, device="cuda:1"), wc)


@pytest.mark.cuda
@needs_gpu
def test_cupy_dlpack():
    cupy = pytest.importorskip("cupy")
    qt = _weights("q6_k", 40, 512)
    wc = qt.to("cuda")
    x = cupy.random.standard_normal((3, 512), dtype=cupy.float32)
    y = lowbit.matmul(x, wc)
    yc = cupy.from_dlpack(y)
    np.testing.assert_array_equal(cupy.asnumpy(yc), lowbit.matmul(cupy.asnumpy(x), wc))
    d = cupy.from_dlpack(lowbit.dequantize(wc))
    np.testing.assert_array_equal(cupy.asnumpy(d), lowbit.dequantize(qt))


# ---- bad input, memory ----

@pytest.mark.cuda
@needs_gpu
def test_bad_numpy_inputs_and_devices():
    wc = _weights("q4_1", 8, 64).to("cuda")
    with pytest.raises(ValueError, match=r"\(\.\.\., k=64\)"):
        lowbit.matmul(np.zeros((2, 32), np.float32), wc)
    with pytest.raises(TypeError, match="float32 or float16"):
        lowbit.matmul(np.zeros((2, 64), np.float64), wc)
    with pytest.raises(ValueError, match="does not exist"):
        _weights("q4_1", 8, 64).to(f"cuda:{lcuda._cuda.device_count()}")
    with pytest.raises(ValueError, match="CPU tensors only"):
        lowbit.matmul(np.zeros((2, 64), np.float32), wc, threads=2)
    with pytest.raises(TypeError, match="stream must be"):
        lowbit.matmul(np.zeros((2, 64), np.float32), wc, stream="fast")


@pytest.mark.cuda
@needs_gpu
def test_out_of_memory_is_a_memory_error_and_leaves_nothing_behind():
    free_before, total = lcuda._cuda.memory_info(0)
    with pytest.raises(MemoryError, match="out of memory"):
        lcuda._cuda.DeviceBuffer(total * 4, 0)
    # the device still works afterwards
    qt = _weights("q4_0", 4, 64)
    np.testing.assert_array_equal(lowbit.dequantize(qt.to("cuda")).numpy(), lowbit.dequantize(qt))


@pytest.mark.cuda
@needs_gpu
def test_no_device_memory_leaks():
    qt = _weights("q4_k", 256, 2048)
    x = np.random.default_rng(0).standard_normal((20, 2048)).astype(np.float32)
    for _ in range(3):  # warm up the allocator and the stream-ordered pool
        lowbit.matmul(x, qt.to("cuda"))
    gc.collect()
    lcuda._cuda.synchronize(0, 0)
    free_before, _ = lcuda._cuda.memory_info(0)
    for _ in range(30):
        wc = qt.to("cuda")
        lowbit.matmul(x, wc)
        lowbit.matmul(x[:1], wc)
        wc.dequantize().numpy()
        del wc
    gc.collect()
    lcuda._cuda.synchronize(0, 0)
    free_after, _ = lcuda._cuda.memory_info(0)
    assert free_before - free_after <= 4 << 20, f"lost {(free_before - free_after) / 2**20:.1f} MiB"


# ---- partial offload (--n-gpu-layers) ----

def _small_model():
    pytest.importorskip("gguf")
    from lowbit.io.gguf import open_gguf
    from lowbit.model.default import default_model_path
    from lowbit.model.llama import LlamaModel
    try:
        path = default_model_path()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"default model not available: {e}")
    return LlamaModel.from_gguf(open_gguf(path))


@pytest.mark.skipif(HAS_CUDA, reason="a usable GPU is present")
def test_cli_n_gpu_layers_without_cuda_is_a_clear_error():
    from lowbit.cli import main
    pytest.importorskip("gguf")
    assert main(["bench", "-p", "4", "-n", "1", "-ngl", "2"]) == 1


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("n_gpu_layers", [3, 1000])
def test_offloaded_model_matches_cpu(n_gpu_layers):
    from lowbit.model.offload import offload_layers
    cpu = _small_model()
    gpu = _small_model()
    moved = offload_layers(gpu, n_gpu_layers)
    assert moved == min(n_gpu_layers, gpu.cfg.n_layer)
    assert gpu.w.layers[0].wq.device == "cuda:0" and cpu.w.layers[0].wq.device == "cpu"
    assert (gpu.w.output.device == "cuda:0") == (n_gpu_layers >= gpu.cfg.n_layer)
    tokens = [1, 504, 3458, 282, 253, 1345, 30, 2]
    a = cpu.forward(tokens, 0, cpu.new_cache(16), logits_from=0)
    b = gpu.forward(tokens, 0, gpu.new_cache(16), logits_from=0)
    # The CPU quantizes activations to 8 bits (ggml's way), the GPU keeps them in fp32: close, not equal.
    err = np.max(np.abs(a - b)) / np.std(a)
    assert err < 0.1, f"max |cpu - gpu| = {err:.3f} logit std"
    assert np.mean(np.argmax(a, -1) == np.argmax(b, -1)) >= 0.75


# ---- opt-in kernels (kernel="mma", "mma_async", "gemv_async"): last in the file, so a fault in
# one (a sticky CUDA error poisons the process's context) cannot hide the results of the default paths ----

# GPU shapes for the mma kernels: K_MMA plus rows of 16-byte multiples (mma_async's cp.async path;
# the others take its direct fallback): q4_1 k=128 (a partial stage of 4 units), 512 (2 stages of 8
# units: two of the 4 warps idle), 1280 (5 stages: 2, 2, 1, 0 per warp).
K_MMA_GPU = [96, 512, 1280] if QUICK else K_MMA + [128, 1280]


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("qtype", MMA_TYPES)
@pytest.mark.parametrize("m", M_MMA)
def test_mma_kernel_against_cpu_reference(qtype, m):
    # kernel="mma" / "mma_async": int8 tensor cores. Same numerics as the dp4a GEMV, so they must match
    # that kernel's host build and the lane-by-lane host run of the mma code to fp32 rounding.
    for k in K_MMA_GPU:
        for n in N_MMA + ([] if QUICK else [67]):
            qt = _weights(qtype, n, k, seed=m)
            wc = qt.to("cuda")
            x = np.random.default_rng([m, n, k]).standard_normal((m, k)).astype(np.float32)
            wd = lowbit.dequantize(qt)
            ref = x.astype(np.float64) @ wd.astype(np.float64).T
            y_cpu = lowbit.matmul(x, qt).astype(np.float64)
            y_q8 = lcuda._cuda.gemv_q8_host(qtype, qt.data.reshape(n, -1), x).astype(np.float64)
            y_mh = lcuda._cuda.gemv_mma_host(qtype, qt.data.reshape(n, -1), x).astype(np.float64)
            for kernel in ("mma", "mma_async"):
                y = lcuda.matmul(x, wc, kernel=kernel)
                where = f"{kernel} {qtype} m={m} n={n} k={k}"
                assert isinstance(y, np.ndarray) and y.shape == (m, n) and np.all(np.isfinite(y)), where
                err = _rel_err(y, ref, x, wd)
                assert err <= TOL_GEMV_Q8, f"{where}: rel err {err:.2e}"
                err = _rel_err(y, y_cpu, x, wd)
                assert err <= TOL_VS_CPU_MATMUL, f"{where}: vs CPU matmul {err:.2e}"
                err = _rel_err(y, y_q8, x, wd)
                assert err <= TOL_SAME_ALGO, f"{where}: vs gemv_q8_host {err:.2e}"
                err = _rel_err(y, y_mh, x, wd)
                assert err <= TOL_SAME_ALGO, f"{where}: vs gemv_mma_host {err:.2e}"


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("kernel", ["mma", "mma_async"])
@pytest.mark.parametrize("qtype", MMA_TYPES)
def test_mma_kernel_large_shapes_match_default_gemv(qtype, kernel):
    # Thousands of 16-row tiles and long k (each warp loops over many units): equal to the default
    # integer GEMV, whose numerics it shares.
    n, k = (1000, 2048) if QUICK else (4099, 4096)
    qt = _weights(qtype, n, k)
    wc = qt.to("cuda")
    wd = lowbit.dequantize(qt)
    for m in (1, 2, 16, 32):
        x = np.random.default_rng(m).standard_normal((m, k)).astype(np.float32)
        y = lcuda.matmul(x, wc, kernel=kernel)
        err = _rel_err(y, lcuda.matmul(x, wc, kernel="gemv").astype(np.float64), x, wd)
        assert err <= TOL_SAME_ALGO, f"{qtype} m={m}: {kernel} vs gemv {err:.2e}"
        err = _rel_err(y, x.astype(np.float64) @ wd.astype(np.float64).T, x, wd)
        assert err <= TOL_GEMV_Q8, f"{qtype} m={m}: {err:.2e}"


@pytest.mark.cuda
@needs_gpu
def test_mma_kernel_bad_requests_are_value_errors():
    qk = _weights("q4_k", 3, 256).to("cuda")
    q4 = _weights("q4_0", 3, 256).to("cuda")
    for kernel in ("mma", "mma_async"):
        with pytest.raises(ValueError, match=f"no kernel '{kernel}'"):
            lcuda.matmul(np.zeros((1, 256), np.float32), qk, kernel=kernel)
        with pytest.raises(ValueError, match="m <= 32"):
            lcuda.matmul(np.zeros((33, 256), np.float32), q4, kernel=kernel)


def _async_k_values(qtype: str) -> list[int]:
    """Rows of 16-byte multiples (the pipelined path): one span of 32 units or less, 40 units (a span
    and a tail), 72 units; and for the 32-blocks a row of 3 blocks (54/60/102 bytes: the direct-load
    fallback)."""
    if lowbit.type_info(qtype)["block_size"] == 256:
        return [256, 1280] if QUICK else [256, 1280, 2304]
    return [96, 768, 1280] if QUICK else [96, 256, 768, 1280, 2304]


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("qtype", ASYNC_TYPES)
@pytest.mark.parametrize("m", [1, 2, 3, 5, 8])
def test_gemv_async_kernel_against_cpu_reference(qtype, m):
    # kernel="gemv_async": the dp4a GEMV's numerics (its host build is the reference to fp32 rounding).
    for k in _async_k_values(qtype):
        for n in N_VALUES:
            qt = _weights(qtype, n, k, seed=m)
            x = np.random.default_rng([m, n, k]).standard_normal((m, k)).astype(np.float32)
            wd = lowbit.dequantize(qt)
            y = lcuda.matmul(x, qt.to("cuda"), kernel="gemv_async")
            assert isinstance(y, np.ndarray) and y.shape == (m, n) and np.all(np.isfinite(y))
            err = _rel_err(y, x.astype(np.float64) @ wd.astype(np.float64).T, x, wd)
            assert err <= TOL_GEMV_Q8, f"{qtype} m={m} n={n} k={k}: rel err {err:.2e}"
            err = _rel_err(y, lowbit.matmul(x, qt).astype(np.float64), x, wd)
            assert err <= TOL_VS_CPU_MATMUL, f"{qtype} m={m} n={n} k={k}: vs CPU matmul {err:.2e}"
            y_host = lcuda._cuda.gemv_q8_host(qtype, qt.data.reshape(n, -1), x).astype(np.float64)
            err = _rel_err(y, y_host, x, wd)
            assert err <= TOL_SAME_ALGO, f"{qtype} m={m} n={n} k={k}: vs gemv_q8_host {err:.2e}"


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("qtype", ASYNC_TYPES)
def test_gemv_async_kernel_large_shapes_match_default_gemv(qtype):
    n, k = (1000, 2048) if QUICK else (4099, 4096)
    qt = _weights(qtype, n, k)
    wc = qt.to("cuda")
    wd = lowbit.dequantize(qt)
    for m in (1, 4, 8):
        x = np.random.default_rng(m).standard_normal((m, k)).astype(np.float32)
        y = lcuda.matmul(x, wc, kernel="gemv_async")
        err = _rel_err(y, lcuda.matmul(x, wc, kernel="gemv").astype(np.float64), x, wd)
        assert err <= TOL_SAME_ALGO, f"{qtype} m={m}: gemv_async vs gemv {err:.2e}"


@pytest.mark.cuda
@needs_gpu
def test_gemv_async_kernel_bad_requests_are_value_errors():
    q6 = _weights("q6_k", 3, 256).to("cuda")
    with pytest.raises(ValueError, match="no kernel 'gemv_async'"):
        lcuda.matmul(np.zeros((1, 256), np.float32), q6, kernel="gemv_async")
    q4 = _weights("q4_0", 3, 256).to("cuda")
    with pytest.raises(ValueError, match="m <= 8"):
        lcuda.matmul(np.zeros((9, 256), np.float32), q4, kernel="gemv_async")



# ---- the tile8 device layout (q4_0 / q4_1 / q8_0, k % 256 == 0) and the streaming GEMV ----

TILE8_TYPES = ["q4_0", "q4_1", "q8_0"]
STREAM_TYPES = ["q4_0", "q4_1", "q8_0", "q4_k", "q5_k", "q6_k"]


@needs_extension
@pytest.mark.parametrize("qtype", TILE8_TYPES)
def test_tile8_layout_host_build(qtype):
    # pack is a byte permutation undone by unpack; every decoder over the tile8 addressing gives the GGUF
    # decoder's values bit for bit, and the integer / mma GEMV host builds the same sums.
    c = lcuda._cuda
    assert sorted(c.tile8_types()) == sorted(TILE8_TYPES)
    for n, k in ((1, 256), (5, 768), (3, 2048)):
        qt = _weights(qtype, n, k)
        rows = qt.data.reshape(n, -1)
        tiled = c.tile8_pack(qtype, rows, k)
        assert tiled.shape == rows.shape and not np.array_equal(tiled, rows)
        np.testing.assert_array_equal(c.tile8_unpack(qtype, tiled, k), rows)
        np.testing.assert_array_equal(c.decode_host(qtype, tiled, k, "tile8"), c.decode_host(qtype, rows, k))
        np.testing.assert_array_equal(c.decode_host(qtype, tiled, k, "tile8"), lowbit.dequantize(qt))
        x = np.random.default_rng(k).standard_normal((3, k)).astype(np.float32)
        np.testing.assert_array_equal(c.gemv_q8_host(qtype, tiled, x, "tile8"), c.gemv_q8_host(qtype, rows, x))
        np.testing.assert_array_equal(c.gemv_mma_host(qtype, tiled, x, "tile8"), c.gemv_mma_host(qtype, rows, x))
    # q4_0 tile: 8 scales (16 bytes), then 8 x 16 quant bytes
    qt = _weights("q4_0", 1, 256)
    raw = qt.data.reshape(8, 18)
    tiled = c.tile8_pack("q4_0", qt.data.reshape(1, -1), 256)[0]
    np.testing.assert_array_equal(tiled[:16].reshape(8, 2), raw[:, :2])
    np.testing.assert_array_equal(tiled[16:].reshape(8, 16), raw[:, 2:])


@needs_extension
def test_tile8_bad_requests():
    c = lcuda._cuda
    qt = _weights("q4_0", 2, 96)
    with pytest.raises(ValueError, match="multiple of 256"):
        c.tile8_pack("q4_0", qt.data.reshape(2, -1), 96)
    qk = _weights("q4_k", 2, 256)
    with pytest.raises(ValueError, match="no tile8 layout"):
        c.tile8_pack("q4_k", qk.data.reshape(2, -1), 256)
    with pytest.raises(ValueError, match="unknown layout"):
        c.decode_host("q4_0", _weights("q4_0", 1, 256).data.reshape(1, -1), 256, "tiles")
    with pytest.raises(ValueError, match="in layout tile8"):
        c.decode_host("q4_k", qk.data.reshape(2, -1), 256, "tile8")
    with pytest.raises(ValueError, match="layout must be"):  # checked before any device is needed
        _weights("q4_0", 2, 256).to("cuda", layout="bogus")
    assert lcuda.device_layout("q4_0", (4, 512)) == "tile8"
    assert lcuda.device_layout("q4_0", (4, 96)) == "gguf" and lcuda.device_layout("q4_k", (4, 512)) == "gguf"


def _group_tensor(n: int, k: int, group: int, act_order: bool, seed: int = 0):
    rng = np.random.default_rng([seed, n, k, group])
    groups = (k + group - 1) // group
    q = rng.integers(0, 16, (n, k))
    scales = (rng.random((n, groups)) * 0.02 + 0.001).astype(np.float16).astype(np.float32)
    zeros = rng.integers(0, 17, (n, groups)).astype(np.float32)
    if act_order == "irregular":  # groups of different sizes: the chunk -> group table path
        g_idx = np.sort(rng.integers(0, groups, k)) if k >= groups else None
        g_idx[:groups] = np.arange(groups)  # every group present
        g_idx = rng.permutation(g_idx)
    else:
        g_idx = rng.permutation(np.arange(k) // group) if act_order else None
    return lowbit.GroupQuantizedTensor.from_grid(q, scales, zeros, g_idx, 4, group)


def _group_host_args(gt):
    return lcuda.group_device_arrays(gt)  # what CudaGroupTensor uploads


GROUP_CASES = [(5, 256, 32, False), (7, 576, 128, False), (3, 320, 64, True), (9, 1000, 128, True),
               (6, 700, 100, "irregular")]


@needs_extension
@pytest.mark.parametrize("n,k,group,act_order", GROUP_CASES)
def test_group_int4_gemv_host_build(n, k, group, act_order):
    # The CUDA group GEMV's numerics on the host (chunk -> group map, column gather, 8-bit x): equal to the
    # float64 product of the dequantized weights with x as the kernel quantizes it (in the padded order).
    gt = _group_tensor(n, k, group, act_order)
    wd = gt.dequantize()
    x = np.random.default_rng(k).standard_normal((3, k)).astype(np.float32)
    codes, params, unit_group, xsrc, k_, upg = _group_host_args(gt)
    assert upg == (0 if act_order == "irregular" else -(-group // 32))  # plain and act-order: uniform
    y = lcuda._cuda.group_gemv_host(codes, params, unit_group, xsrc, k_, x, units_per_group=upg)
    np.testing.assert_array_equal(lcuda._cuda.group_gemv_host(codes, params, unit_group, xsrc, k_, x), y)
    xp = np.zeros((3, gt.xsrc.shape[0]), np.float32)
    live = gt.xsrc >= 0
    xp[:, live] = x[:, gt.xsrc[live]]
    xq = _q8_blocks_emulated(xp)
    x_back = np.zeros((3, k))
    x_back[:, gt.xsrc[live]] = xq[:, live]
    ref = x_back @ wd.astype(np.float64).T
    assert _rel_err(y, ref, x, wd) <= TOL_SAME_ALGO
    assert _rel_err(y, x.astype(np.float64) @ wd.astype(np.float64).T, x, wd) <= TOL_GEMV_Q8


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("qtype", TILE8_TYPES)
def test_tile8_device_tensor_every_kernel(qtype):
    # to("cuda") packs tile8 where k % 256 == 0; .to("cpu") restores the GGUF bytes; dequantize and
    # every kernel over tile8 match the same kernel over the GGUF layout (the same numerics).
    for n, k in ((1, 256), (67, 768)) if QUICK else ((1, 256), (67, 768), (130, 2048)):
        qt = _weights(qtype, n, k)
        wt, wg = qt.to("cuda"), qt.to("cuda", layout="gguf")
        assert wt.layout == "tile8" and wg.layout == "gguf"
        np.testing.assert_array_equal(wt.to("cpu").data, qt.data)
        np.testing.assert_array_equal(np.asarray(wt.dequantize()), lowbit.dequantize(qt))
        wd = lowbit.dequantize(qt)
        for m in (1, 3, 8, 16, 33):
            x = np.random.default_rng([m, k]).standard_normal((m, k)).astype(np.float32)
            for kernel in ("auto", "gemv", "gemv_stream", "gemv_f32", "gemm", "mma", "mma_async", "gemv_async"):
                if m > {"gemv_stream": 8, "gemv_f32": 8, "gemv_async": 8, "gemm": 10**9}.get(kernel, 32):
                    continue
                y_t = lcuda.matmul(x, wt, kernel=kernel)
                y_g = lcuda.matmul(x, wg, kernel=kernel)
                err = _rel_err(y_t, y_g.astype(np.float64), x, wd)
                assert err <= TOL_SAME_ALGO, f"{qtype} {kernel} m={m} n={n} k={k}: tile8 vs gguf {err:.2e}"


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("qtype", STREAM_TYPES)
@pytest.mark.parametrize("m", M_GEMV + [12, 16])
def test_gemv_stream_against_host_build(qtype, m):
    # kernel="gemv_stream" (auto at m <= 8): x quantized in shared memory, persistent grid, pipelined
    # loads; both layouts, n not a multiple of the 8 warps, k of 1 unit up to several 32-unit spans.
    bs = lowbit.type_info(qtype)["block_size"]
    ks = [bs, 3 * bs, 1024, 4352] if bs == 32 else [256, 768, 4352]
    for k in ks[:3] if QUICK else ks:
        for n in (5, 67) if QUICK else (1, 5, 67, 1031):
            qt = _weights(qtype, n, k, seed=m)
            x = np.random.default_rng([m, n, k]).standard_normal((m, k)).astype(np.float32)
            wd = lowbit.dequantize(qt)
            y_host = lcuda._cuda.gemv_q8_host(qtype, qt.data.reshape(n, -1), x).astype(np.float64)
            for w in {qt.to("cuda"), qt.to("cuda", layout="gguf")}:
                if m * -(-k // 1024) * 1280 > 96 * 1024:  # quantized x past gemv_stream's shared memory
                    with pytest.raises(RuntimeError, match="cudaErrorNotSupported"):
                        lcuda.matmul(x, w, kernel="gemv_stream")
                    continue
                y = lcuda.matmul(x, w, kernel="gemv_stream")
                where = f"{qtype} {w.layout} m={m} n={n} k={k}"
                assert y.shape == (m, n) and np.all(np.isfinite(y)), where
                assert _rel_err(y, y_host, x, wd) <= TOL_SAME_ALGO, where
                if m == 1 and w.layout == "tile8":
                    np.testing.assert_array_equal(lcuda.matmul(x, w), y, err_msg=where)  # auto takes it


@pytest.mark.cuda
@needs_gpu
def test_gemv_stream_falls_back_when_x_does_not_fit():
    # 8 rows x 16384 columns of quantized x need 160 KB of shared memory (> 96 KB): auto runs gemv,
    # kernel="gemv_stream" says it cannot.
    qt = _weights("q4_0", 40, 16384)
    w = qt.to("cuda")
    x = np.random.default_rng(0).standard_normal((8, 16384)).astype(np.float32)
    np.testing.assert_array_equal(lcuda.matmul(x, w), lcuda.matmul(x, w, kernel="gemv"))
    with pytest.raises(RuntimeError, match="cudaErrorNotSupported"):
        lcuda.matmul(x, w, kernel="gemv_stream")
    y1 = lcuda.matmul(x[:1], w)  # one row fits
    np.testing.assert_array_equal(y1, lcuda.matmul(x[:1], w, kernel="gemv_stream"))


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("n,k,group,act_order", GROUP_CASES + ([] if QUICK else [(4099, 4096, 128, False)]))
def test_group_int4_on_gpu(n, k, group, act_order):
    gt = _group_tensor(n, k, group, act_order)
    wc = gt.to("cuda")
    assert isinstance(wc, lcuda.CudaGroupTensor) and wc.to("cpu") is gt
    wd = gt.dequantize()
    np.testing.assert_array_equal(np.asarray(lowbit.dequantize(wc)), wd)
    for m in (1, 2, 5, 8, 13, 37):
        x = np.random.default_rng([m, k]).standard_normal((m, k)).astype(np.float32)
        y = lowbit.matmul(x, wc)
        assert y.shape == (m, n)
        codes, params, unit_group, xsrc, k_, upg = _group_host_args(gt)
        y_host = lcuda._cuda.group_gemv_host(codes, params, unit_group, xsrc, k_, x, upg).astype(np.float64)
        assert _rel_err(y, y_host, x, wd) <= TOL_SAME_ALGO, f"m={m}"
        assert _rel_err(y, lowbit.matmul(x, gt).astype(np.float64), x, wd) <= TOL_GEMV_Q8, f"m={m}"


@pytest.mark.cuda
@needs_gpu
def test_group_bad_requests():
    q = np.zeros((4, 64), np.int64)
    g3 = lowbit.GroupQuantizedTensor.from_grid(q, np.ones((4, 2), np.float32), np.zeros((4, 2), np.float32), None, 3, 32)
    with pytest.raises(ValueError, match="4-bit"):
        g3.to("cuda")
    wc = _group_tensor(4, 64, 32, False).to("cuda")
    with pytest.raises(ValueError, match="gemv_stream"):
        lcuda.matmul(np.zeros((1, 64), np.float32), wc, kernel="mma")
    with pytest.raises(ValueError, match="k=64"):
        lowbit.matmul(np.zeros((1, 65), np.float32), wc)
