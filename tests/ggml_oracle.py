"""ggml itself as the oracle: llama-cpp-python's libggml-base called through ctypes.

ggml_quantize_chunk is what llama-quantize runs; the type traits' to_float / from_float_ref are
ggml's reference dequantize and activation quantize (q8_1 and q8_K are not in quantize_chunk).
Import-safe without llama-cpp-python: `available()` says whether the oracle can run.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os

import numpy as np


class _TypeTraits(ctypes.Structure):
    _fields_ = [
        ("type_name", ctypes.c_char_p),
        ("blck_size", ctypes.c_int64),
        ("blck_size_interleave", ctypes.c_int64),
        ("type_size", ctypes.c_size_t),
        ("is_quantized", ctypes.c_bool),
        ("to_float", ctypes.c_void_p),
        ("from_float_ref", ctypes.c_void_p),
    ]


_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
_FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def _lib_dir() -> str | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("llama_cpp")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    d = os.path.join(list(spec.submodule_search_locations)[0], "lib")
    return d if os.path.isdir(d) else None


@functools.lru_cache(maxsize=None)
def _lib():
    d = _lib_dir()
    if d is None:
        return None
    paths = sorted(glob.glob(os.path.join(d, "libggml-base.so*")))
    if not paths:
        return None
    lib = ctypes.CDLL(paths[0])
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p
    ]
    lib.ggml_get_type_traits.restype = ctypes.POINTER(_TypeTraits)
    lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    return lib


@functools.lru_cache(maxsize=None)
def cpu_lib():
    """libggml-cpu: the CPU backend's own (SIMD) activation quantizers and kernels."""
    d = _lib_dir()
    _lib()  # its dependency libggml-base first
    return ctypes.CDLL(sorted(glob.glob(os.path.join(d, "libggml-cpu.so*")))[0])


def available() -> bool:
    return _lib() is not None


def library_path() -> str | None:
    d = _lib_dir()
    return d


def row_size(gguf_id: int, k: int) -> int:
    return int(_lib().ggml_row_size(gguf_id, k))


def traits(gguf_id: int) -> _TypeTraits:
    return _lib().ggml_get_type_traits(gguf_id).contents


def quantize_chunk(gguf_id: int, x: np.ndarray, imatrix: np.ndarray | None = None) -> np.ndarray:
    """ggml_quantize_chunk over all rows of x (rows, k) -> (rows, row_bytes) uint8."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows, k = x.shape
    rb = row_size(gguf_id, k)
    out = np.zeros((rows, rb), dtype=np.uint8)
    im = None if imatrix is None else np.ascontiguousarray(imatrix, dtype=np.float32)
    n = _lib().ggml_quantize_chunk(
        gguf_id, x.ctypes.data, out.ctypes.data, 0, rows, k, None if im is None else im.ctypes.data
    )
    assert n == rows * rb, (n, rows * rb)
    return out


def _exported(prefix: str, gguf_id: int, suffix: str):
    """An exported ggml function by name, e.g. quantize_row_q8_K_ref (q8_K's traits leave it null)."""
    name = f"{prefix}{traits(gguf_id).type_name.decode()}{suffix}"
    try:
        return ctypes.cast(getattr(_lib(), name), ctypes.c_void_p).value
    except AttributeError:
        return None


def _from_float_ref(gguf_id: int):
    return traits(gguf_id).from_float_ref or _exported("quantize_row_", gguf_id, "_ref")


def _to_float(gguf_id: int):
    return traits(gguf_id).to_float or _exported("dequantize_row_", gguf_id, "")


def quantize_ref(gguf_id: int, x: np.ndarray) -> np.ndarray:
    """The type's reference quantize row by row (for the activation types q8_1 / q8_K)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows, k = x.shape
    rb = row_size(gguf_id, k)
    out = np.zeros((rows, rb), dtype=np.uint8)
    fn = _FROM_FLOAT(_from_float_ref(gguf_id))
    for r in range(rows):
        fn(x[r].ctypes.data, out[r].ctypes.data, k)
    return out


def has_to_float(gguf_id: int) -> bool:
    return bool(_to_float(gguf_id))


def dequantize(gguf_id: int, data: np.ndarray, k: int) -> np.ndarray:
    """The type's to_float row by row: data (rows, row_bytes) -> (rows, k) float32."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    rows = data.shape[0]
    out = np.zeros((rows, k), dtype=np.float32)
    fn = _TO_FLOAT(_to_float(gguf_id))
    for r in range(rows):
        fn(data[r].ctypes.data, out[r].ctypes.data, k)
    return out
