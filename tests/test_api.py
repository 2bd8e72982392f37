"""The Python boundary: accepted inputs, threading, and every kind of bad input named in the issue."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import lowbit
from inputs import make_input

ALL = [t["name"] for t in lowbit.types()]


def test_float16_input_equals_float32_of_same_values():
    x16 = make_input("normal", 4, 256).astype(np.float16)
    a = lowbit.quantize(x16, "q4_0")
    b = lowbit.quantize(x16.astype(np.float32), "q4_0")
    np.testing.assert_array_equal(a.data, b.data)


def test_nd_and_1d_shapes():
    x = make_input("normal", 6, 64).reshape(2, 3, 64)
    qt = lowbit.quantize(x, "q8_0")
    assert qt.shape == (2, 3, 64)
    assert lowbit.dequantize(qt).shape == (2, 3, 64)
    v = lowbit.quantize(x[0, 0], "q8_0")
    assert v.shape == (64,) and lowbit.dequantize(v).shape == (64,)
    np.testing.assert_array_equal(v.data, qt.data[: v.nbytes])


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_thread_count_does_not_change_bytes(threads):
    x = make_input("normal", 13, 512)
    base = lowbit.quantize(x, "q4_1", threads=1)
    qt = lowbit.quantize(x, "q4_1", threads=threads)
    np.testing.assert_array_equal(qt.data, base.data)
    np.testing.assert_array_equal(qt.dequantize(threads=threads), base.dequantize(threads=1))


def test_concurrent_calls_from_python_threads():
    xs = [make_input("normal", 9, 256, seed=s) for s in range(6)]
    want = [lowbit.quantize(x, "q5_0", threads=1).data for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(5):
            got[i] = lowbit.quantize(xs[i], "q5_0", threads=2).data

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_env_controls_isa_and_threads():
    code = "import lowbit; i = lowbit.cpu_info(); print(i['isa'], i['threads'])"
    env = dict(os.environ, LOWBIT_ISA="generic", LOWBIT_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["generic", "3"]


def test_cpu_info_names_a_kernel_per_type():
    info = lowbit.cpu_info()
    assert info["isa"] in info["supported"]
    assert set(info["kernels"]) == set(ALL)
    for k in info["kernels"].values():
        assert k["quantize"] in info["supported"] and k["dequantize"] in info["supported"]


# ---- bad input -------------------------------------------------------------------------------

def test_wrong_dtype():
    with pytest.raises(TypeError, match=r"\[quantize\].*float32 or float16"):
        lowbit.quantize(np.zeros((2, 32), np.float64), "q8_0")
    with pytest.raises(TypeError, match=r"\[quantize\].*numpy array"):
        lowbit.quantize([[0.0] * 32], "q8_0")


def test_row_length_not_multiple_of_block():
    with pytest.raises(ValueError, match=r"\[quantize\] k=1000 is not a multiple of q4_k's block size 256"):
        lowbit.quantize(np.zeros((2, 1000), np.float32), "q4_k")


def test_unknown_type():
    with pytest.raises(ValueError, match="unknown quantization type 'q4_z'"):
        lowbit.quantize(np.zeros((2, 32), np.float32), "q4_z")
    with pytest.raises(TypeError):
        lowbit.quantize(np.zeros((2, 32), np.float32), 2)


def test_non_contiguous():
    x = np.zeros((64, 64), np.float32)[:, ::2]
    with pytest.raises(ValueError, match=r"\[quantize\].*C-contiguous"):
        lowbit.quantize(x, "q8_0")


def test_scalar_and_empty():
    with pytest.raises(ValueError, match=r"\[quantize\]"):
        lowbit.quantize(np.array(1.0, dtype=np.float32), "q8_0")
    with pytest.raises(ValueError, match=r"\[quantize\] k=0"):
        lowbit.quantize(np.zeros((3, 0), np.float32), "q8_0")
    qt = lowbit.quantize(np.zeros((0, 64), np.float32), "q8_0")
    assert qt.nbytes == 0 and lowbit.dequantize(qt).shape == (0, 64)


def test_imatrix_wrong_length_or_values():
    x = np.zeros((2, 64), np.float32)
    with pytest.raises(ValueError, match=r"\[quantize\] imatrix must have shape \(64,\)"):
        lowbit.quantize(x, "q4_0", imatrix=np.ones(32, np.float32))
    with pytest.raises(ValueError, match="finite and non-negative"):
        lowbit.quantize(x, "q4_0", imatrix=np.full(64, np.nan, np.float32))
    with pytest.raises(TypeError, match="imatrix must be floating point"):
        lowbit.quantize(x, "q4_0", imatrix=np.ones(64, np.int32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("qtype", [t["name"] for t in lowbit.types() if t["is_quantized"]])
def test_nan_inf_rejected_for_block_types(qtype, bad):
    bs = lowbit.type_info(qtype)["block_size"]
    x = np.ones((3, bs), np.float32)
    x[2, 5] = bad
    with pytest.raises(ValueError, match=r"\[quantize\] row 2 contains NaN or inf"):
        lowbit.quantize(x, qtype)


def test_nan_inf_pass_through_float_types():
    x = np.array([[np.nan, np.inf, -np.inf, 1.0]], np.float32)
    for t in ("f32", "f16", "bf16"):
        y = lowbit.quantize(x, t).dequantize()
        assert np.isnan(y[0, 0]) and y[0, 1] == np.inf and y[0, 2] == -np.inf and y[0, 3] == 1.0


def test_bad_threads_and_isa():
    x = np.zeros((2, 32), np.float32)
    with pytest.raises(ValueError, match=r"\[quantize\] threads must be >= 1, got 0"):
        lowbit.quantize(x, "q8_0", threads=0)
    with pytest.raises(TypeError, match="threads must be an int"):
        lowbit.quantize(x, "q8_0", threads=1.5)
    with pytest.raises(ValueError, match="unknown ISA"):
        lowbit.quantize(x, "q8_0", isa="sse9")


def test_quantized_tensor_validates():
    with pytest.raises(ValueError, match="takes 36 bytes, got 35"):
        lowbit.QuantizedTensor(np.zeros(35, np.uint8), "q4_0", (2, 32))
    with pytest.raises(TypeError, match="uint8"):
        lowbit.QuantizedTensor(np.zeros(36, np.int8), "q4_0", (2, 32))
    with pytest.raises(TypeError, match="expected a QuantizedTensor"):
        lowbit.dequantize(np.zeros(36, np.uint8))


def test_dequantize_into_out():
    x = make_input("normal", 3, 64)
    qt = lowbit.quantize(x, "q4_1")
    out = np.empty((3, 64), np.float32)
    assert lowbit.dequantize(qt, out=out) is out
    np.testing.assert_array_equal(out, lowbit.dequantize(qt))
    with pytest.raises(ValueError, match=r"\[dequantize\] out must be C-contiguous with shape \(3, 64\)"):
        lowbit.dequantize(qt, out=np.empty((3, 65), np.float32))
    with pytest.raises(TypeError, match="float32"):
        lowbit.dequantize(qt, out=np.empty((3, 64), np.float64))
