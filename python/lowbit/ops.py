"""The public array API: validation and dispatch in Python, every number crunched in _core.

Weights follow GGUF's convention: a 2-D weight is (n_out, k) with k, the reduction dimension, last and
contiguous; quantization runs along k in blocks of the type's block size.
"""

from __future__ import annotations

import functools
import numbers

import numpy as np

from . import _core

__all__ = ["QuantizedTensor", "RepackedTensor", "cpu_info", "dequantize", "has_cuda", "matmul", "quantize", "type_info", "types"]


@functools.lru_cache(maxsize=None)
def _type_table() -> dict[str, dict]:
    return {row["name"]: row for row in _core.types()}


def types() -> list[dict]:
    """The quantization type table (one dict per type), read from the C++ core."""
    return [dict(row) for row in _type_table().values()]


def type_info(qtype: str) -> dict:
    """The table row of one type, by name (case-insensitive): block_size, type_size, gguf_id, ..."""
    if not isinstance(qtype, str):
        raise TypeError(f"[type_info] qtype must be a str such as 'q4_k', got {type(qtype).__name__}")
    row = _type_table().get(qtype.lower())
    if row is None:
        names = ", ".join(_type_table())
        raise ValueError(f"[type_info] unknown quantization type {qtype!r}; expected one of: {names}")
    return dict(row)


def has_cuda() -> bool:
    """True when lowbit was built with CUDA and a usable GPU and driver are present; never raises."""
    from . import cuda
    return cuda.has_cuda()


def _is_cuda_tensor(obj) -> bool:
    from .cuda import CudaGroupTensor, CudaQuantizedTensor
    return isinstance(obj, (CudaQuantizedTensor, CudaGroupTensor))


def _on_cuda(obj) -> bool:
    """A DLPack producer (torch, CuPy, CudaArray) whose data is in GPU memory."""
    try:
        return hasattr(obj, "__dlpack_device__") and int(obj.__dlpack_device__()[0]) == 2
    except Exception:
        return False


def cpu_info() -> dict:
    """The ISA each kernel runs with, the ISAs compiled in and supported, the default thread count."""
    info = _core.cpu_info()
    for name, isa in _core.matmul_kernels().items():
        info["kernels"][name]["matmul"] = isa
    for name, isa in _core.rows8_kernels().items():
        info["kernels"][name]["matmul_rows8"] = isa
    return info


@functools.lru_cache(maxsize=None)
def rows8_kernel_types() -> frozenset:
    """The types whose matmul has a kernel of its own on the rows8 layout at this CPU's ISA: those a
    model repacks at load (RepackedTensor). Other types can be repacked too, but their matmul then
    unpacks the weights on every call."""
    return frozenset(_core.rows8_kernels())


def _check_threads(op: str, threads) -> int:
    if threads is None:
        return 0  # the core's default: LOWBIT_NUM_THREADS or all cores
    if type(threads) is int and threads > 0:
        return threads  # the common case, without the numbers.Integral check (~0.4 us per call)
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"[{op}] threads must be an int, got {type(threads).__name__}")
    if threads <= 0:
        raise ValueError(f"[{op}] threads must be >= 1, got {threads}")
    return int(threads)


def _check_isa(op: str, isa) -> str:
    if isa is None:
        return ""
    if not isinstance(isa, str):
        raise TypeError(f"[{op}] isa must be a str, got {type(isa).__name__}")
    return isa


class _BlockTensor:
    """What a QuantizedTensor and a RepackedTensor share: bytes of one block type, a logical shape."""

    __slots__ = ("data", "qtype", "shape")

    @property
    def nbytes(self) -> int:
        return int(self.data.size)

    @property
    def bits_per_weight(self) -> float:
        return _type_table()[self.qtype]["bits_per_weight"]

    @property
    def block_size(self) -> int:
        return _type_table()[self.qtype]["block_size"]

    @property
    def device(self) -> str:
        return "cpu"

    def dequantize(self, threads: int | None = None) -> np.ndarray:
        return dequantize(self, threads=threads)


class QuantizedTensor(_BlockTensor):
    """A tensor stored in a GGUF block format.

    data: uint8, 1-D, the exact GGUF payload (rows of blocks, row-major).
    qtype: type name ("q4_k"); shape: the logical shape, last dim k along which blocks run.
    """

    __slots__ = ()

    def __init__(self, data: np.ndarray, qtype: str, shape):
        info = type_info(qtype)
        shape = tuple(int(s) for s in shape)
        if len(shape) < 1 or any(s < 0 for s in shape):
            raise ValueError(f"[QuantizedTensor] shape must have >= 1 non-negative dims, got {shape}")
        k = shape[-1]
        if k % info["block_size"]:
            raise ValueError(
                f"[QuantizedTensor] k={k} is not a multiple of {info['name']}'s block size {info['block_size']}"
            )
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
            raise TypeError("[QuantizedTensor] data must be a uint8 numpy array")
        expected = _rows_of(shape) * (k // info["block_size"]) * info["type_size"]
        if data.size != expected:
            raise ValueError(
                f"[QuantizedTensor] {shape} {info['name']} takes {expected} bytes, got {data.size}"
            )
        self.data = data.reshape(-1)
        self.qtype = info["name"]
        self.shape = shape

    def to(self, device, *, layout: str | None = None):
        """'cpu' -> self, or with layout="rows8" a RepackedTensor (8 rows interleaved for the CPU kernels,
        made once: see RepackedTensor); 'cuda' / 'cuda:N' -> a lowbit.cuda.CudaQuantizedTensor holding
        these bytes on the GPU (RuntimeError when lowbit has no CUDA build or the machine no usable
        GPU), layout None (the best the kernels have: "tile8" for q4_0 / q4_1 / q8_0 with k % 256 == 0)
        or "gguf"."""
        from . import cuda
        kind, index = cuda.parse_device("to", device)
        if kind == "cpu":
            if layout in (None, "gguf"):
                return self
            if layout == "rows8":
                return RepackedTensor.from_quantized(self)
            raise ValueError(f"[to] a CPU layout must be None, 'gguf' or 'rows8', got {layout!r}")
        return cuda.to_device(self, index, layout)

    def __repr__(self) -> str:
        return f"QuantizedTensor(qtype={self.qtype!r}, shape={self.shape}, nbytes={self.nbytes})"


class RepackedTensor(_BlockTensor):
    """A 2-D QuantizedTensor's blocks repacked for lowbit's CPU kernels, once, at load: layout "rows8"
    (csrc/core/rows8.h) stores each 8 rows' blocks side by side, field by field, so that the matmul reads
    8 rows as one stream with the 8 outputs in the lanes of one register: q4_0 / q4_1 decode 1.6-2x
    faster than on GGUF's rows, with the same bits. Same size as the GGUF payload.

    data: uint8, the repacked bytes (not a GGUF payload: write the QuantizedTensor from
    .to("cpu", layout="gguf")). qtype, shape (n, k) with n % 8 == 0. lowbit.matmul and lowbit.dequantize
    take it as they take a QuantizedTensor.
    """

    __slots__ = ()
    layout = "rows8"

    def __init__(self, data: np.ndarray, qtype: str, shape):
        info = type_info(qtype)
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or shape[0] <= 0 or shape[1] <= 0 or shape[0] % 8:
            raise ValueError(f"[RepackedTensor] rows8 needs a 2-D shape (n, k) with n a positive multiple of 8, got {shape}")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or not data.flags.c_contiguous:
            raise TypeError("[RepackedTensor] data must be a C-contiguous uint8 numpy array")
        if shape[1] % info["block_size"] or data.size != shape[0] * (shape[1] // info["block_size"]) * info["type_size"]:
            raise ValueError(f"[RepackedTensor] {shape} {info['name']} does not match {data.size} bytes")
        self.data = data.reshape(-1)
        self.qtype = info["name"]
        self.shape = shape

    @classmethod
    def from_quantized(cls, qt: QuantizedTensor, threads: int | None = None, done=None) -> "RepackedTensor":
        """qt repacked. done(start, stop), when given, is called after each stretch of ~4 MB of qt's
        bytes [start, stop) has been repacked (a model loader drops those pages of the file behind it,
        so a large tensor's copy does not coexist with all of its mapped bytes)."""
        op = "to"
        if not isinstance(qt, QuantizedTensor):
            raise TypeError(f"[{op}] expected a QuantizedTensor, got {type(qt).__name__}")
        if len(qt.shape) != 2 or qt.shape[0] % 8 or not _type_table()[qt.qtype]["is_quantized"]:
            raise ValueError(f"[{op}] layout 'rows8' needs a 2-D quantized tensor with rows % 8 == 0, got "
                             f"{qt.qtype} {qt.shape}")
        n, k = qt.shape
        rb = qt.nbytes // n
        src = np.ascontiguousarray(qt.data).reshape(n, rb)
        out = np.empty((n, rb), np.uint8)
        step = max(8, (4 << 20) // rb // 8 * 8)  # whole groups of 8 rows
        for r0 in range(0, n, step):
            r1 = min(n, r0 + step)
            out[r0:r1] = _core.repack_rows8(src[r0:r1], qt.qtype, r1 - r0, k, _check_threads(op, threads))
            if done is not None:
                done(r0 * rb, r1 * rb)
        return cls(out.reshape(-1), qt.qtype, qt.shape)

    def rows(self, ids) -> QuantizedTensor:
        """Rows `ids` (1-D ints) in GGUF's layout, (len(ids), k): the embedding lookup of a tied output."""
        n, k = self.shape
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise TypeError(f"[RepackedTensor.rows] ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
        data = _core.unpack_rows8_rows(self.data, self.qtype, n, k, ids.astype(np.int64, copy=False))
        return QuantizedTensor(data.reshape(-1), self.qtype, (len(ids), k))

    def to(self, device, *, layout: str | None = None):
        """'cpu' with layout "gguf" -> the QuantizedTensor of GGUF's bytes; 'cpu' otherwise -> self;
        'cuda' -> through GGUF's bytes, as QuantizedTensor.to."""
        from . import cuda
        kind, _ = cuda.parse_device("to", device)
        if kind == "cpu" and layout in (None, "rows8"):
            return self
        n, k = self.shape
        if kind == "cpu" and layout != "gguf":
            raise ValueError(f"[to] a CPU layout must be None, 'gguf' or 'rows8', got {layout!r}")
        plain = QuantizedTensor(_core.unpack_rows8(self.data, self.qtype, n, k).reshape(-1), self.qtype, self.shape)
        return plain if kind == "cpu" else plain.to(device, layout=layout)

    def __repr__(self) -> str:
        return f"RepackedTensor(qtype={self.qtype!r}, shape={self.shape}, layout='rows8', nbytes={self.nbytes})"


def _rows_of(shape) -> int:
    rows = 1
    for s in shape[:-1]:
        rows *= s
    return rows


def quantize(w, qtype: str, imatrix=None, *, threads: int | None = None, isa: str | None = None) -> QuantizedTensor:
    """Quantize w (float32 or float16, shape (..., k)) to a GGUF block type, bytes identical to ggml's.

    imatrix: optional importance weights, (k,) float, as llama-imatrix produces (mean squared
    activation per input column); used by the types that have an importance-weighted path and
    ignored by the others, exactly as llama.cpp does.
    Block types reject NaN and inf with ValueError; f32/f16/bf16 convert them as IEEE does.
    """
    op = "quantize"
    info = type_info(qtype)
    if not isinstance(w, np.ndarray):
        raise TypeError(f"[{op}] w must be a numpy array, got {type(w).__name__}")
    if w.dtype not in (np.float32, np.float16):
        raise TypeError(f"[{op}] w must be float32 or float16, got {w.dtype}")
    if w.ndim < 1:
        raise ValueError(f"[{op}] w must have at least 1 dimension (..., k), got a scalar")
    if not w.flags.c_contiguous:
        raise ValueError(f"[{op}] w must be C-contiguous; call np.ascontiguousarray(w) first")
    k = w.shape[-1]
    bs = info["block_size"]
    if k == 0 or k % bs:
        raise ValueError(f"[{op}] k={k} is not a multiple of {info['name']}'s block size {bs}")
    w2 = w.reshape(-1, k)
    if w2.dtype == np.float16:
        w2 = w2.astype(np.float32)
    im = None
    if imatrix is not None:
        im = np.asarray(imatrix)
        if im.dtype.kind != "f":
            raise TypeError(f"[{op}] imatrix must be floating point, got {im.dtype}")
        if im.shape != (k,):
            raise ValueError(f"[{op}] imatrix must have shape ({k},) to match k, got {im.shape}")
        im = np.ascontiguousarray(im, dtype=np.float32)
        if not np.all(np.isfinite(im)) or np.any(im < 0):
            raise ValueError(f"[{op}] imatrix must be finite and non-negative")
    data = _core.quantize(w2, info["name"], im, _check_threads(op, threads), _check_isa(op, isa))
    return QuantizedTensor(data.reshape(-1), info["name"], w.shape)


def dequantize(qt: QuantizedTensor, *, threads: int | None = None, isa: str | None = None,
               out: np.ndarray | None = None, stream=None) -> np.ndarray:
    """Expand a QuantizedTensor to float32 of its logical shape, values identical to ggml's.

    out: optional float32 C-contiguous array of qt.shape to write into (a reused buffer avoids the
    page faults of a fresh allocation when dequantizing repeatedly).
    A tensor on the GPU (qt.to("cuda")) is expanded there into a lowbit.cuda.CudaArray, on `stream`."""
    op = "dequantize"
    if _is_cuda_tensor(qt):
        if out is not None or threads is not None or isa is not None:
            raise ValueError(f"[{op}] out, threads and isa apply to CPU tensors only; got a tensor on {qt.device}")
        from . import cuda
        return cuda.dequantize(qt, stream=stream)
    from .group import GroupQuantizedTensor
    if isinstance(qt, GroupQuantizedTensor):
        if out is not None:
            raise ValueError(f"[{op}] out applies to QuantizedTensor only")
        return qt.dequantize(threads=threads, isa=isa)
    if isinstance(qt, RepackedTensor):
        qt = qt.to("cpu", layout="gguf")
    if not isinstance(qt, QuantizedTensor):
        raise TypeError(f"[{op}] expected a QuantizedTensor, RepackedTensor or GroupQuantizedTensor, got "
                        f"{type(qt).__name__}")
    info = _type_table()[qt.qtype]
    k = qt.shape[-1]
    rows = _rows_of(qt.shape)
    if out is not None:
        if not isinstance(out, np.ndarray) or out.dtype != np.float32:
            raise TypeError(f"[{op}] out must be a float32 numpy array")
        if out.shape != qt.shape or not out.flags.c_contiguous:
            raise ValueError(f"[{op}] out must be C-contiguous with shape {qt.shape}, got {out.shape}")
    if rows == 0 or k == 0:
        return out if out is not None else np.zeros(qt.shape, dtype=np.float32)
    data = np.ascontiguousarray(qt.data).reshape(rows, k // info["block_size"] * info["type_size"])
    out2 = None if out is None else out.reshape(rows, k)
    res = _core.dequantize(data, info["name"], k, _check_threads(op, threads), _check_isa(op, isa), out2)
    return out if out is not None else res.reshape(qt.shape)


def _host_matmul_input(op: str, x, w_shape: tuple) -> np.ndarray:
    """x: a C-contiguous float32/float16 numpy array (..., k) for a weight of shape (n, k) -> the (m, k)
    view the kernels take; the checks both lowbit.matmul and its CUDA host path make."""
    n, k = w_shape
    if not isinstance(x, np.ndarray):
        raise TypeError(f"[{op}] x must be a numpy array, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float16):
        raise TypeError(f"[{op}] x must be float32 or float16, got {x.dtype}")
    if x.ndim < 1 or x.shape[-1] != k:
        raise ValueError(f"[{op}] x must have shape (..., k={k}) to match w {tuple(w_shape)}, got {x.shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"[{op}] x must be C-contiguous; call np.ascontiguousarray(x) first")
    x2 = x.reshape(-1, k)
    if x2.shape[0] == 0 or n == 0:
        raise ValueError(f"[{op}] x and w must be non-empty, got x {x.shape} and w {tuple(w_shape)}")
    return x2


def matmul(x, w: QuantizedTensor, *, threads: int | None = None, isa: str | None = None, stream=None,
           out=None) -> np.ndarray:
    """y = x @ W.T for weights W (n, k) in a GGUF type, computed as ggml's mul_mat does it.

    x: float32 (or float16) (..., k) -> float32 (..., n). Each row of x is quantized to W's dot type
    (q8_0 / q8_1 / q8_K; rounded to f16 or bf16 for those weights), then every output is the dot
    product of a weight row with a quantized activation row, so results equal ggml's up to float
    rounding. Quantized dot types reject NaN and inf in x with ValueError.

    A lowbit.GroupQuantizedTensor (GPTQ / AWQ groups) runs on its own kernels with float32 activations
    and float32 sums (lowbit.group.group_matmul): no activation quantization.

    With w on the GPU (w.to("cuda")), lowbit.cuda.matmul runs it there: x numpy -> numpy, or x a CUDA
    torch/CuPy tensor (DLPack, no copy) -> a CudaArray; `stream` and `out` apply to that path only.
    """
    op = "matmul"
    # The common case first, in as few Python operations as possible: a small GEMV (SmolLM2's 576 x 576)
    # takes ~10 us in C++, and this wrapper's checks had cost 2.7 us more per call than the 1 us of the
    # binding itself (a function-level import alone 0.7 us).
    tw = type(w)
    if ((tw is QuantizedTensor or tw is RepackedTensor) and type(x) is np.ndarray and x.ndim == 2
            and len(w.shape) == 2 and x.dtype == np.float32 and stream is None and out is None and isa is None):
        n, k = w.shape
        if (x.shape[1] == k and x.shape[0] > 0 and n > 0 and x.flags.c_contiguous
                and (threads is None or (type(threads) is int and threads > 0))):
            return _core.matmul(x, w.data, w.qtype, n, k, threads or 0, "", "gguf" if tw is QuantizedTensor else "rows8")
    # Everything else: the GPU and group tensors, other input forms, and the error messages.
    if not isinstance(w, QuantizedTensor) and _is_cuda_tensor(w):
        if threads is not None or isa is not None:
            raise ValueError(f"[{op}] threads and isa apply to CPU tensors only; w is on {w.device}")
        from . import cuda
        return cuda.matmul(x, w, stream=stream, out=out)
    if stream is not None or out is not None:
        raise ValueError(f"[{op}] stream and out apply to GPU tensors only; move w with w.to('cuda')")
    if type(x) is not np.ndarray and _on_cuda(x):
        raise ValueError(f"[{op}] x is on the GPU but w is on the CPU; move w with w.to('cuda') "
                         f"or x to the host")
    from .group import GroupQuantizedTensor, group_matmul
    if isinstance(w, GroupQuantizedTensor):
        return group_matmul(x, w, threads, isa)
    if not isinstance(w, (QuantizedTensor, RepackedTensor)):
        raise TypeError(f"[{op}] w must be a QuantizedTensor, RepackedTensor or GroupQuantizedTensor, got "
                        f"{type(w).__name__}")
    if len(w.shape) != 2:
        raise ValueError(f"[{op}] w must be 2-D (n, k), got shape {w.shape}")
    n, k = w.shape
    x2 = _host_matmul_input(op, x, w.shape)
    if x2.dtype == np.float16:
        x2 = x2.astype(np.float32)
    y = _core.matmul(x2, w.data, w.qtype, n, k, _check_threads(op, threads), _check_isa(op, isa),
                     "rows8" if isinstance(w, RepackedTensor) else "gguf")
    return y.reshape(x.shape[:-1] + (n,))
