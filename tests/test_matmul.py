"""lowbit.matmul / _core.matmul: every type on every supported ISA against an exact float64 model of
ggml's dot products, against the generic (reference) kernels, and against ggml's own vec_dot.

The float64 model: each activation row quantized to the dot type and dequantized, times the
dequantized weights. Integer block dots are exact, so only float rounding separates the kernels from
it; q4_1/q5_1 add m_w * s_a with q8_1's f16-rounded s, as ggml does, and the model does the same.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np
import pytest

import lowbit
from inputs import make_input
from lowbit import _core

TYPES = [t["name"] for t in lowbit.types() if not t["is_activation"]]
ISAS = lowbit.cpu_info()["supported"]
INFO = {t["name"]: t for t in lowbit.types()}

# (m, n, blocks along k): one block, odd block counts, n off every tile width, m = 1..9, 31, 513.
SHAPES = [
    (1, 1, 1), (1, 37, 3), (2, 5, 7), (3, 67, 1), (4, 16, 2), (5, 33, 5), (6, 9, 3), (7, 64, 2),
    (8, 100, 1), (9, 31, 4), (16, 40, 2), (31, 50, 3), (64, 97, 3), (513, 37, 2),
]
# Relative to sum_k |a_k w_k|. Kernels may split a weight into two terms that cancel (q4_K's
# d*sc*q - dmin*m; the SIMD kernels' unsigned level plus an offset, q4_0's q - 8 or VNNI's q8_0 + 128),
# so rounding is relative to terms up to several times the bound: 1e-5 is ~100 float32 epsilons of
# headroom there, while a wrong block, scale or lane is off by far more.
RTOL = 1e-5


def k_for(qtype: str, blocks: int) -> int:
    bs = INFO[qtype]["block_size"]
    # float types: k need not be a multiple of anything; odd, even and multiples of 32 all occur
    return blocks * bs if bs > 1 else blocks * 32 + (3, 0, 2)[blocks % 3]


def quantized_pair(qtype: str, m: int, n: int, k: int, dist: str = "normal", seed: int = 0):
    x = make_input(dist, m, k, seed=seed)
    w = make_input("normal", n, k, seed=seed + 1)
    return x, lowbit.quantize(w, qtype)


def _f16_at(data: np.ndarray, rows: int, block_bytes: int, offset: int) -> np.ndarray:
    """The f16 field at byte `offset` of every block -> (rows, blocks) float64."""
    b = data.reshape(rows, -1, block_bytes)[:, :, offset:offset + 2]
    return np.ascontiguousarray(b).view(np.float16)[:, :, 0].astype(np.float64)


def model(x: np.ndarray, W: lowbit.QuantizedTensor):
    """(float64 result, sum_k |a_k w_k| bound) of ggml's dot products for every output."""
    info = INFO[W.qtype]
    n, k = W.shape
    dot = info["dot_type"]
    A = lowbit.quantize(x, dot)
    a = A.dequantize().astype(np.float64)
    w = W.dequantize().astype(np.float64)
    if dot != "q8_1":
        return a @ w.T, np.abs(a) @ np.abs(w).T
    # q4_1 / q5_1: x = d*q + m per block; ggml adds m_w * s_a with s_a = f16(d_a * sum q_a)
    m_w = _f16_at(W.data, n, info["type_size"], 2)
    s_a = _f16_at(A.data, x.shape[0], INFO["q8_1"]["type_size"], 2)
    w_dq = w - np.repeat(m_w, 32, axis=1)
    return a @ w_dq.T + s_a @ m_w.T, np.abs(a) @ np.abs(w_dq).T + np.abs(s_a) @ np.abs(m_w).T


def assert_close(got, want, bound, what):
    err = np.abs(got.astype(np.float64) - want)
    tol = RTOL * bound + 1e-30
    bad = err > tol
    assert not bad.any(), f"{what}: {bad.sum()} outputs off, worst {np.max(err / tol):.3g}x the tolerance"


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("qtype", TYPES)
def test_matches_float64_model_and_generic(qtype, isa):
    for m, n, blocks in SHAPES:
        k = k_for(qtype, blocks)
        x, W = quantized_pair(qtype, m, n, k, seed=m + n)
        want, bound = model(x, W)
        got = _core.matmul(x, W.data, qtype, n, k, 2, isa)
        assert got.shape == (m, n) and got.dtype == np.float32
        assert_close(got, want, bound, f"{qtype} {isa} m={m} n={n} k={k} vs float64")
        if isa != "generic":
            ref = _core.matmul(x, W.data, qtype, n, k, 1, "generic")
            assert_close(got, ref.astype(np.float64), bound, f"{qtype} {isa} m={m} n={n} k={k} vs generic")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("qtype", ["f32", "f16", "bf16"])
def test_float_long_rows(qtype, isa):
    # k > 4096: the float GEMV takes 8 weight rows per pass at m = 1 (x no longer fits L1); n = 21 leaves
    # a tail of 5 single rows, m = 5 a tail of one activation row; the split must not change any bits
    k = 4099
    for m, n in ((1, 21), (2, 9), (5, 21)):
        x, W = quantized_pair(qtype, m, n, k, seed=m + n)
        want, bound = model(x, W)
        got = _core.matmul(x, W.data, qtype, n, k, 1, isa)
        assert_close(got, want, bound, f"{qtype} {isa} m={m} n={n} k={k} vs float64")
        for threads in (2, 3):
            np.testing.assert_array_equal(_core.matmul(x, W.data, qtype, n, k, threads, isa), got)


@pytest.mark.parametrize("dist", ["heavy_tailed", "zeros", "one_outlier", "constant_rows", "integers"])
@pytest.mark.parametrize("qtype", TYPES)
def test_value_families(qtype, dist):
    k = k_for(qtype, 3)
    for m in (1, 5, 40):
        x, W = quantized_pair(qtype, m, 19, k, dist=dist)
        want, bound = model(x, W)
        for isa in ISAS:
            assert_close(_core.matmul(x, W.data, qtype, 19, k, 2, isa), want, bound, f"{qtype} {isa} {dist} m={m}")


@pytest.mark.parametrize("qtype", ["q4_0", "q4_1", "q8_0", "q4_k", "q6_k", "iq4_xs", "f16"])
def test_thread_count_does_not_change_results(qtype):
    # m=200 with one tile of columns: more threads cut the rows into 2 or 3 slabs
    k = k_for(qtype, 4)
    for m, n in ((1, 131), (3, 131), (70, 131), (200, 40)):
        x, W = quantized_pair(qtype, m, n, k)
        base = _core.matmul(x, W.data, qtype, n, k, 1)
        for threads in (2, 3, 7):
            np.testing.assert_array_equal(_core.matmul(x, W.data, qtype, n, k, threads), base)


def test_python_wrapper_shapes_and_dtypes():
    x = make_input("normal", 6, 64).reshape(2, 3, 64)
    W = lowbit.quantize(make_input("normal", 10, 64, seed=1), "q8_0")
    y = lowbit.matmul(x, W)
    assert y.shape == (2, 3, 10) and y.dtype == np.float32
    np.testing.assert_array_equal(y.reshape(6, 10), _core.matmul(x.reshape(6, 64), W.data, "q8_0", 10, 64))
    # one row streams the weights, six unpack panels: the same sums, rounded in another order
    np.testing.assert_allclose(lowbit.matmul(x[0, 0], W), y[0, 0], rtol=1e-5, atol=1e-5)
    y16 = lowbit.matmul(x.astype(np.float16), W, threads=1)
    np.testing.assert_array_equal(y16, lowbit.matmul(x.astype(np.float16).astype(np.float32), W))


def test_kernels_are_reported():
    kernels = _core.matmul_kernels()
    assert set(kernels) == set(TYPES)
    assert all(v in ISAS for v in kernels.values())
    info = lowbit.cpu_info()["kernels"]
    assert all(info[t]["matmul"] == kernels[t] for t in TYPES)


# ---- bad input -------------------------------------------------------------------------------

def _w(qtype="q4_0", n=4, k=64):
    return lowbit.quantize(make_input("normal", n, k), qtype)


def test_bad_k():
    W = _w()
    with pytest.raises(ValueError, match=r"\[matmul\].*k=64"):
        lowbit.matmul(np.zeros((2, 32), np.float32), W)
    with pytest.raises(ValueError, match=r"\[matmul\].*k=32.*expected k=64"):
        _core.matmul(np.zeros((2, 32), np.float32), W.data, "q4_0", 4, 64)
    with pytest.raises(ValueError, match=r"\[matmul\].*multiple of q4_k's block size 256"):
        _core.matmul(np.zeros((2, 64), np.float32), W.data, "q4_k", 4, 64)


def test_bad_dtype():
    W = _w()
    with pytest.raises(TypeError, match=r"\[matmul\].*float32"):
        lowbit.matmul(np.zeros((2, 64), np.float64), W)
    with pytest.raises(TypeError, match=r"\[matmul\].*float32"):
        _core.matmul(np.zeros((2, 64), np.float64), W.data, "q4_0", 4, 64)
    with pytest.raises(TypeError, match=r"\[matmul\].*uint8"):
        _core.matmul(np.zeros((2, 64), np.float32), W.data.view(np.int8), "q4_0", 4, 64)
    with pytest.raises(TypeError, match=r"\[matmul\].*QuantizedTensor"):
        lowbit.matmul(np.zeros((2, 64), np.float32), np.zeros((4, 64), np.float32))


def test_non_contiguous_x():
    W = _w()
    x = np.zeros((64, 2), np.float32).T
    with pytest.raises(ValueError, match=r"\[matmul\].*C-contiguous"):
        lowbit.matmul(x, W)
    with pytest.raises(ValueError, match=r"\[matmul\].*C-contiguous"):
        _core.matmul(x, W.data, "q4_0", 4, 64)


def test_empty_and_bad_threads():
    W = _w()
    with pytest.raises(ValueError, match=r"\[matmul\]"):
        lowbit.matmul(np.zeros((0, 64), np.float32), W)
    with pytest.raises(ValueError, match=r"\[matmul\].*at least one row"):
        _core.matmul(np.zeros((0, 64), np.float32), W.data, "q4_0", 4, 64)
    for threads in (0, -1):
        with pytest.raises(ValueError, match=r"\[matmul\].*threads"):
            lowbit.matmul(np.zeros((1, 64), np.float32), W, threads=threads)
    with pytest.raises(ValueError, match=r"\[matmul\].*threads"):
        _core.matmul(np.zeros((1, 64), np.float32), W.data, "q4_0", 4, 64, -2)


def test_bad_weights_and_types():
    W = _w()
    x = np.zeros((1, 64), np.float32)
    with pytest.raises(ValueError, match=r"\[matmul\].*\(5, 36\)"):
        _core.matmul(x, W.data, "q4_0", 5, 64)
    with pytest.raises(ValueError, match=r"\[matmul\].*activation-only"):
        _core.matmul(x, np.zeros((4, 72), np.uint8), "q8_1", 4, 64)
    with pytest.raises(ValueError, match=r"\[matmul\].*unknown quantization type"):
        _core.matmul(x, W.data, "q9_9", 4, 64)
    with pytest.raises(ValueError, match=r"\[matmul\].*unknown ISA"):
        _core.matmul(x, W.data, "q4_0", 4, 64, 1, "sse9")
    with pytest.raises(ValueError, match=r"\[matmul\].*\(n, k\)"):
        lowbit.matmul(x, lowbit.quantize(make_input("normal", 4, 64).reshape(2, 2, 64), "q4_0"))


def test_non_finite_x():
    W = _w()
    x = np.zeros((3, 64), np.float32)
    x[2, 5] = np.nan
    with pytest.raises(ValueError, match=r"\[matmul\] row 2 .*NaN or inf"):
        lowbit.matmul(x, W)
    # float weights take x as it is (rounded): NaN flows through as IEEE says
    Wf = _w("f32")
    assert np.isnan(lowbit.matmul(x, Wf)[2]).all()


@pytest.mark.parametrize("qtype", ["q4_0", "q4_1", "q4_k"])  # dot types q8_0, q8_1, q8_K
@pytest.mark.parametrize("isa", ISAS)
def test_non_finite_x_every_position(qtype, isa):
    """The fused activation quantizers detect NaN / inf anywhere in a row (first, last, after a larger
    value in the same block), on every ISA, and name the first bad row."""
    W = lowbit.quantize(make_input("normal", 5, 256, seed=3), qtype)
    for bad in (np.nan, np.inf, -np.inf):
        for col in (0, 7, 31, 32, 255):
            x = make_input("normal", 4, 256, seed=4)
            x[1, (col + 1) % 256] = 1e30  # a larger finite value next to it
            x[2, col] = bad
            x[3, col] = bad
            with pytest.raises(ValueError, match=r"\[matmul\] row 2 .*NaN or inf"):
                _core.matmul(x, W.data, qtype, 5, 256, 2, isa)


# ---- ggml itself --------------------------------------------------------------------------------

def _ggml_vec_dot(qtype):
    import ggml_oracle

    lib = ggml_oracle.library_path()
    cpu = ctypes.CDLL(sorted(glob.glob(os.path.join(lib, "libggml-cpu.so*")))[0])
    cpu.ggml_cpu_init()  # fills the f16 tables its dot products read
    name = ggml_oracle.traits(INFO[qtype]["gguf_id"]).type_name.decode()
    dot = ggml_oracle.traits(INFO[INFO[qtype]["dot_type"]]["gguf_id"]).type_name.decode()
    sym = f"ggml_vec_dot_{name}" if not INFO[qtype]["is_quantized"] else f"ggml_vec_dot_{name}_{dot}"
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                             ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return proto(ctypes.cast(getattr(cpu, sym), ctypes.c_void_p).value)


@pytest.mark.oracle
@pytest.mark.parametrize("qtype", TYPES)
def test_matches_ggml_vec_dot(qtype):
    """ggml's own (SIMD) vec_dot on the same weight and activation bytes."""
    m, n, k = 3, 11, k_for(qtype, 4)
    x, W = quantized_pair(qtype, m, n, k)
    A = lowbit.quantize(x, INFO[qtype]["dot_type"]).data.reshape(m, -1)
    Wd = W.data.reshape(n, -1)
    vec_dot = _ggml_vec_dot(qtype)
    want = np.zeros((m, n), np.float64)
    s = ctypes.c_float()
    for i in range(m):
        for j in range(n):
            vec_dot(k, ctypes.addressof(s), 0, Wd[j].ctypes.data, 0, A[i].ctypes.data, 0, 1)
            want[i, j] = s.value
    _, bound = model(x, W)
    for isa in ISAS:
        assert_close(_core.matmul(x, W.data, qtype, n, k, 1, isa), want, bound, f"{qtype} {isa} vs ggml")
