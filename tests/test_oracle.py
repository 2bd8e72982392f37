"""Live oracles. ggml itself (marker `oracle`, needs llama-cpp-python): fresh shapes and seeds
beyond the committed golden hashes. The gguf package (llama.cpp's gguf-py, numpy): its quantize
for the types it implements and its dequantize for all."""

import gguf
import numpy as np
import pytest

import ggml_oracle
import lowbit
from inputs import DISTRIBUTIONS, make_imatrix, make_input

TYPES = [t for t in lowbit.types() if t["is_quantized"] or t["name"] in ("f16", "bf16")]
SHAPES = [(7, 768), (2, 2560)]


def _ggml_quantize(row, x, im):
    if row["is_activation"]:
        return ggml_oracle.quantize_ref(row["gguf_id"], x)
    return ggml_oracle.quantize_chunk(row["gguf_id"], x, im)


@pytest.mark.oracle
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dist", DISTRIBUTIONS)
@pytest.mark.parametrize("row", TYPES, ids=lambda r: r["name"])
def test_quantize_equals_ggml(row, dist, shape):
    rows, k = shape
    x = make_input(dist, rows, k, seed=7)
    ims = [None, make_imatrix(k, seed=7)] if row["has_imatrix"] else [None]
    for im in ims:
        ref = _ggml_quantize(row, x, im)
        qt = lowbit.quantize(x, row["name"], im)
        got = qt.data.reshape(ref.shape)
        if not np.array_equal(got, ref):
            bad = np.argwhere(got != ref)[0]
            pytest.fail(f"{row['name']} {dist} imatrix={im is not None}: first differing byte at row {bad[0]}, "
                        f"offset {bad[1]} (block {bad[1] // row['type_size']})")
        if ggml_oracle.has_to_float(row["gguf_id"]):
            want = ggml_oracle.dequantize(row["gguf_id"], ref, k)
            np.testing.assert_array_equal(qt.dequantize().view(np.uint32), want.view(np.uint32))


GGUF_QUANTIZE = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "bf16"}


@pytest.mark.parametrize("row", [t for t in TYPES if t["name"] in GGUF_QUANTIZE], ids=lambda r: r["name"])
@pytest.mark.parametrize("dist", ["normal", "heavy_tailed", "constant_rows", "integers", "one_outlier"])
def test_quantize_equals_gguf_py(row, dist):
    x = make_input(dist, 5, 512, seed=3)
    want = gguf.quants.quantize(x, gguf.GGMLQuantizationType(row["gguf_id"]))
    got = lowbit.quantize(x, row["name"]).data
    np.testing.assert_array_equal(got, want.reshape(-1).view(np.uint8))


@pytest.mark.parametrize("row", [t for t in TYPES if not t["is_activation"]], ids=lambda r: r["name"])
def test_dequantize_equals_gguf_py(row):
    x = make_input("normal", 5, 512, seed=4)
    qt = lowbit.quantize(x, row["name"])
    want = gguf.quants.dequantize(qt.data.reshape(5, -1), gguf.GGMLQuantizationType(row["gguf_id"]))
    # gguf-py computes in float32 with numpy in a different order for some types: equal to rounding.
    np.testing.assert_allclose(qt.dequantize(), want.astype(np.float32), rtol=1e-6, atol=1e-6)


@pytest.mark.oracle
@pytest.mark.parametrize("qtype", ["q8_0", "q8_1"])
@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_matmul_activation_quantization_equals_ggml_cpu(qtype, dist):
    """lowbit.matmul quantizes activations as ggml's CPU mul_mat does (its from_float), not with the
    storage rounding: same int8 activations, so model outputs agree with llama.cpp to float rounding."""
    import ctypes

    lib = ggml_oracle.cpu_lib()
    x = make_input(dist, 5, 256, seed=11)
    want = np.zeros((5, lowbit.type_info(qtype)["type_size"] * 8), np.uint8)
    fn = getattr(lib, f"quantize_row_{qtype}")
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    for r in range(5):
        fn(x[r].ctypes.data, want[r].ctypes.data, 256)
    got = lowbit._core.quantize_activations(x, qtype)
    np.testing.assert_array_equal(got, want)
