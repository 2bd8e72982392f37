"""ggml's mul_mat on its CPU backend as oracle and baseline (through llama-cpp-python's libggml).

One graph per (weights, m): W (n, k) in a GGUF type, x (m, k) float32, y = x @ W.T (m, n), computed
by ggml_graph_compute with a persistent ggml threadpool, the way llama.cpp runs a layer. The weights
stay in ggml's plain layout (no repacked CPU buffer), as the issue's reference numbers were measured.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os

import numpy as np

import ggml_oracle

GGML_TYPE_F32 = 0
GGML_MAX_N_THREADS = 512


class _InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


class _ThreadpoolParams(ctypes.Structure):
    _fields_ = [
        ("cpumask", ctypes.c_bool * GGML_MAX_N_THREADS),
        ("n_threads", ctypes.c_int),
        ("prio", ctypes.c_int),
        ("poll", ctypes.c_uint32),
        ("strict_cpu", ctypes.c_bool),
        ("paused", ctypes.c_bool),
    ]


class _Cplan(ctypes.Structure):
    _fields_ = [
        ("work_size", ctypes.c_size_t),
        ("work_data", ctypes.c_void_p),
        ("n_threads", ctypes.c_int),
        ("threadpool", ctypes.c_void_p),
        ("abort_callback", ctypes.c_void_p),
        ("abort_callback_data", ctypes.c_void_p),
        ("use_ref", ctypes.c_bool),
    ]


@functools.lru_cache(maxsize=None)
def _libs():
    d = ggml_oracle.library_path()
    if d is None:
        return None
    base = ctypes.CDLL(sorted(glob.glob(os.path.join(d, "libggml-base.so*")))[0], mode=ctypes.RTLD_GLOBAL)
    cpu = ctypes.CDLL(sorted(glob.glob(os.path.join(d, "libggml-cpu.so*")))[0], mode=ctypes.RTLD_GLOBAL)
    vp, i64, ci = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    base.ggml_init.restype = vp
    base.ggml_init.argtypes = [_InitParams]
    base.ggml_free.argtypes = [vp]
    base.ggml_new_tensor_2d.restype = vp
    base.ggml_new_tensor_2d.argtypes = [vp, ci, i64, i64]
    base.ggml_get_data.restype = vp
    base.ggml_get_data.argtypes = [vp]
    base.ggml_nbytes.restype = ctypes.c_size_t
    base.ggml_nbytes.argtypes = [vp]
    base.ggml_mul_mat.restype = vp
    base.ggml_mul_mat.argtypes = [vp, vp, vp]
    base.ggml_new_graph.restype = vp
    base.ggml_new_graph.argtypes = [vp]
    base.ggml_build_forward_expand.argtypes = [vp, vp]
    base.ggml_tensor_overhead.restype = ctypes.c_size_t
    base.ggml_graph_overhead.restype = ctypes.c_size_t
    base.ggml_threadpool_params_init.argtypes = [ctypes.POINTER(_ThreadpoolParams), ci]
    cpu.ggml_cpu_init.argtypes = []
    cpu.ggml_threadpool_new.restype = vp
    cpu.ggml_threadpool_new.argtypes = [ctypes.POINTER(_ThreadpoolParams)]
    cpu.ggml_threadpool_free.argtypes = [vp]
    cpu.ggml_graph_plan.restype = _Cplan
    cpu.ggml_graph_plan.argtypes = [vp, ci, vp]
    cpu.ggml_graph_compute.restype = ci
    cpu.ggml_graph_compute.argtypes = [vp, ctypes.POINTER(_Cplan)]
    cpu.ggml_cpu_init()
    return base, cpu


def available() -> bool:
    return ggml_oracle.available() and _libs() is not None


class GgmlMatmul:
    """y = x @ W.T by ggml. w_data: (n, row_bytes) uint8 in GGUF type gguf_id; x later: (m, k) float32."""

    def __init__(self, gguf_id: int, w_data: np.ndarray, n: int, k: int, m: int, threads: int):
        base, cpu = _libs()
        self._base, self._cpu = base, cpu
        self.m, self.n, self.k = m, n, k
        need = w_data.nbytes + 4 * m * k + 4 * m * n + 8 * base.ggml_tensor_overhead() + base.ggml_graph_overhead()
        self._ctx = base.ggml_init(_InitParams(need + (1 << 20), None, False))
        if not self._ctx:
            raise MemoryError("ggml_init failed")
        self._w = base.ggml_new_tensor_2d(self._ctx, gguf_id, k, n)
        assert base.ggml_nbytes(self._w) == w_data.nbytes, (base.ggml_nbytes(self._w), w_data.nbytes)
        ctypes.memmove(base.ggml_get_data(self._w), np.ascontiguousarray(w_data).ctypes.data, w_data.nbytes)
        self._x = base.ggml_new_tensor_2d(self._ctx, GGML_TYPE_F32, k, m)
        self._y = base.ggml_mul_mat(self._ctx, self._w, self._x)
        self._graph = base.ggml_new_graph(self._ctx)
        base.ggml_build_forward_expand(self._graph, self._y)
        params = _ThreadpoolParams()
        base.ggml_threadpool_params_init(ctypes.byref(params), threads)
        self._pool = cpu.ggml_threadpool_new(ctypes.byref(params))
        self._plan = cpu.ggml_graph_plan(self._graph, threads, self._pool)
        self._work = np.empty(max(1, self._plan.work_size), np.uint8)
        self._plan.work_data = self._work.ctypes.data
        self._xbuf = np.ndarray((m, k), np.float32, buffer=(ctypes.c_char * (4 * m * k)).from_address(
            base.ggml_get_data(self._x)))
        self._ybuf = np.ndarray((m, n), np.float32, buffer=(ctypes.c_char * (4 * m * n)).from_address(
            base.ggml_get_data(self._y)))

    def set_x(self, x: np.ndarray) -> None:
        self._xbuf[...] = x

    def compute(self) -> None:
        status = self._cpu.ggml_graph_compute(self._graph, ctypes.byref(self._plan))
        if status != 0:
            raise RuntimeError(f"ggml_graph_compute failed with status {status}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.set_x(x)
        self.compute()
        return self._ybuf.copy()

    def close(self) -> None:
        if self._pool:
            self._cpu.ggml_threadpool_free(self._pool)
            self._pool = None
        if self._ctx:
            self._base.ggml_free(self._ctx)
            self._ctx = None

    def __del__(self):
        self.close()
