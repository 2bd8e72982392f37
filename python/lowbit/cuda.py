"""The CUDA backend's Python side: device tensors, DLPack interop and streams (thin; kernels live in _cuda).

    w = lowbit.quantize(weights, "q4_k").to("cuda")     # GGUF bytes copied to the GPU once
    y = lowbit.matmul(x, w)                             # x: numpy -> numpy, or CUDA torch/CuPy -> CudaArray
    y_t = torch.from_dlpack(y)                          # zero copy

Streams: work is enqueued on `stream=` (an int handle, a torch.cuda.Stream or a cupy Stream) or, when
not given, on the current stream of the library that produced x (torch / CuPy), else CUDA's legacy
default stream. A producer's pending work on x is ordered before ours through the DLPack `stream`
argument; a consumer of our result is ordered after ours the same way.

Without the _cuda extension, or without a driver or GPU, importing this module still works:
has_cuda() is False and every CUDA call raises RuntimeError saying why.
"""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np

try:
    from . import _cuda
    _IMPORT_ERROR = ""
except ImportError as exc:  # a build without nvcc, or a broken install
    _cuda = None
    _IMPORT_ERROR = str(exc)

__all__ = ["CudaArray", "CudaQuantizedTensor", "device_info", "has_cuda"]

# The kernels are compiled for sm_80+ (the default arch list); older GPUs have no kernel image.
MIN_COMPUTE_CAPABILITY = (8, 0)

_DL_CPU, _DL_CUDA = 1, 2
_DL_FLOAT = 2


def _usable_devices() -> list[int]:
    if _cuda is None:
        return []
    try:
        return [i for i in range(_cuda.device_count())
                if tuple(_cuda.device_info(i)["compute_capability"]) >= MIN_COMPUTE_CAPABILITY]
    except Exception:  # a driver failing mid-query counts as no device
        return []


def has_cuda() -> bool:
    """True when lowbit was built with CUDA and a usable GPU (compute capability >= 8.0) and driver exist.

    Never raises."""
    try:
        return bool(_usable_devices())
    except Exception:
        return False


def _unavailable_reason() -> str:
    if _cuda is None:
        return f"lowbit was built without its CUDA extension (lowbit._cuda: {_IMPORT_ERROR})"
    count = _cuda.device_count()
    if count == 0:
        return f"no usable CUDA device ({_cuda.device_error()})"
    ccs = [tuple(_cuda.device_info(i)["compute_capability"]) for i in range(count)]
    return (f"no CUDA device with compute capability >= {MIN_COMPUTE_CAPABILITY[0]}.{MIN_COMPUTE_CAPABILITY[1]} "
            f"(found {ccs}; lowbit's kernels are built for {_cuda.compiled_archs})")


def _require_device(op: str, index: int) -> None:
    if _cuda is None or _cuda.device_count() == 0:
        raise RuntimeError(f"[{op}] CUDA is not available: {_unavailable_reason()}")
    count = _cuda.device_count()
    if not 0 <= index < count:
        raise ValueError(f"[{op}] device cuda:{index} does not exist; this machine has {count} CUDA device(s)")
    cc = tuple(_cuda.device_info(index)["compute_capability"])
    if cc < MIN_COMPUTE_CAPABILITY:
        raise RuntimeError(f"[{op}] cuda:{index} has compute capability {cc[0]}.{cc[1]}; lowbit's kernels need "
                           f">= {MIN_COMPUTE_CAPABILITY[0]}.{MIN_COMPUTE_CAPABILITY[1]}")


def parse_device(op: str, device) -> tuple[str, int]:
    """'cpu' -> ('cpu', 0); 'cuda' / 'cuda:N' (or a torch.device) -> ('cuda', N)."""
    text = str(device) if not isinstance(device, str) else device
    kind, _, index = text.strip().lower().partition(":")
    if kind == "cpu" and not index:
        return "cpu", 0
    if kind == "cuda" and (not index or index.isdigit()):
        return "cuda", int(index or 0)
    raise ValueError(f"[{op}] device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def device_info(index: int = 0) -> dict:
    """Name, compute capability, memory and SM count of one GPU."""
    _require_device("device_info", index)
    return dict(_cuda.device_info(index))


def _stream_handle(op: str, stream) -> int:
    """An explicit stream argument as a raw cudaStream_t handle (0: the legacy default stream)."""
    if isinstance(stream, bool):
        raise TypeError(f"[{op}] stream must be an int handle, a torch.cuda.Stream or a cupy Stream, got bool")
    if isinstance(stream, numbers.Integral):
        handle = int(stream)
    elif hasattr(stream, "cuda_stream"):  # torch.cuda.Stream
        handle = int(stream.cuda_stream)
    elif hasattr(stream, "ptr"):  # cupy.cuda.Stream
        handle = int(stream.ptr)
    else:
        raise TypeError(f"[{op}] stream must be an int handle, a torch.cuda.Stream or a cupy Stream, "
                        f"got {type(stream).__name__}")
    if handle < 0:
        raise ValueError(f"[{op}] stream handle must be >= 0, got {handle}")
    return handle


def _producer_stream(x, device_index: int) -> int:
    """The current stream of the library that made x, so we queue behind its work without a sync."""
    if isinstance(x, CudaArray):
        return x._stream
    module = type(x).__module__.split(".")[0]
    try:
        if module == "torch" and "torch" in sys.modules:
            return int(sys.modules["torch"].cuda.current_stream(device_index).cuda_stream)
        if module == "cupy" and "cupy" in sys.modules:
            cupy = sys.modules["cupy"]
            with cupy.cuda.Device(device_index):
                return int(cupy.cuda.get_current_stream().ptr)
    except Exception:
        pass
    return 0


def _dlpack_stream(handle: int) -> int:
    # DLPack spells CUDA's legacy default stream 1 (0 is ambiguous there); 1 and 2 are also the
    # runtime's own cudaStreamLegacy / cudaStreamPerThread handles, so other values pass through.
    return 1 if handle == 0 else handle


class CudaArray:
    """A float32 C-contiguous array in GPU memory: what lowbit.matmul / dequantize return for CUDA inputs.

    Implements __dlpack__ / __dlpack_device__, so torch.from_dlpack(y) and cupy.from_dlpack(y) take it
    without a copy; .numpy() copies it to the host."""

    __slots__ = ("_buffer", "_keepalive", "_stream", "device_index", "shape")

    def __init__(self, buffer, shape, device_index: int, stream: int, keepalive=None):
        self._buffer = buffer  # _cuda.DeviceBuffer: the memory, freed when the last holder goes
        self._keepalive = keepalive  # inputs a kernel queued on `stream` may still read
        self._stream = stream
        self.device_index = device_index
        self.shape = tuple(shape)

    dtype = np.dtype(np.float32)

    @property
    def device(self) -> str:
        return f"cuda:{self.device_index}"

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ptr(self) -> int:
        return int(self._buffer.ptr)

    def __dlpack_device__(self) -> tuple[int, int]:
        return (_DL_CUDA, self.device_index)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            raise BufferError(f"[CudaArray.__dlpack__] cannot export {self.device} to device {dl_device}")
        if copy:
            raise BufferError("[CudaArray.__dlpack__] copy=True is not supported; export shares the memory")
        if stream is not None and stream != -1:
            _cuda.stream_wait(self.device_index, self._stream, int(stream))
        versioned = max_version is not None and int(max_version[0]) >= 1
        return _cuda.dlpack_export(self, self.ptr, self.device_index, list(self.shape), versioned)

    def numpy(self) -> np.ndarray:
        host = np.empty(self.shape, dtype=np.float32)
        _cuda.download(self.ptr, self.device_index, host, self._stream)
        return host

    def __array__(self, dtype=None, copy=None):
        host = self.numpy()
        return host if dtype is None else host.astype(dtype)

    def to(self, device):
        kind, index = parse_device("CudaArray.to", device)
        if kind == "cpu":
            return self.numpy()
        if index == self.device_index:
            return self
        raise ValueError(f"[CudaArray.to] copies between GPUs are not supported ({self.device} -> cuda:{index})")

    def __repr__(self) -> str:
        return f"CudaArray(shape={self.shape}, dtype=float32, device={self.device!r})"


class CudaQuantizedTensor:
    """A QuantizedTensor whose GGUF bytes live in GPU memory (from QuantizedTensor.to('cuda')).

    layout "gguf": the file's bytes as they are; "tile8" (q4_0 / q4_1 / q8_0 with k % 256 == 0): the same
    bytes with each 8 blocks' scales moved ahead of their quants, so the kernels read quants with 16-byte
    loads (csrc/cuda/tiled.cuh). Either way .to('cpu') gives back an identical QuantizedTensor."""

    __slots__ = ("_buffer", "device_index", "qtype", "shape", "layout")

    def __init__(self, buffer, qtype: str, shape, device_index: int, layout: str = "gguf"):
        self._buffer = buffer
        self.qtype = qtype
        self.shape = tuple(shape)
        self.device_index = device_index
        self.layout = layout

    @property
    def device(self) -> str:
        return f"cuda:{self.device_index}"

    @property
    def nbytes(self) -> int:
        return int(self._buffer.nbytes)

    @property
    def bits_per_weight(self) -> float:
        from .ops import type_info
        return type_info(self.qtype)["bits_per_weight"]

    @property
    def block_size(self) -> int:
        from .ops import type_info
        return type_info(self.qtype)["block_size"]

    def to(self, device):
        kind, index = parse_device("CudaQuantizedTensor.to", device)
        if kind == "cuda":
            if index == self.device_index:
                return self
            return self.to("cpu").to(device)
        from .ops import QuantizedTensor
        host = np.empty(self.nbytes, dtype=np.uint8)
        if host.size:
            _cuda.download(self._buffer.ptr, self.device_index, host, 0)
        if self.layout == "tile8":
            k = self.shape[-1]
            host = _cuda.tile8_unpack(self.qtype, host.reshape(_rows_of(self.shape), -1), k).reshape(-1)
        return QuantizedTensor(host, self.qtype, self.shape)

    def dequantize(self, *, stream=None) -> CudaArray:
        return dequantize(self, stream=stream)

    def _matmul(self, x_ptr: int, m: int, y_ptr: int, handle: int, kernel: str) -> None:
        n, k = self.shape
        _cuda.matmul(self._buffer, self.qtype, n, k, x_ptr, m, y_ptr, handle, kernel, self.layout)

    def _dequantize(self, y_ptr: int, handle: int) -> None:
        _cuda.dequantize(self._buffer, self.qtype, _rows_of(self.shape), self.shape[-1], y_ptr, handle, self.layout)

    def __repr__(self) -> str:
        return (f"CudaQuantizedTensor(qtype={self.qtype!r}, shape={self.shape}, nbytes={self.nbytes}, "
                f"device={self.device!r}, layout={self.layout!r})")


class CudaGroupTensor:
    """A 4-bit lowbit.GroupQuantizedTensor (GPTQ / AWQ) on the GPU, from GroupQuantizedTensor.to('cuda'):
    its CPU layout (codes in 32-column chunks, columns grouped) with (scale, zero) per row and group, a
    chunk -> group map and the column map. matmul runs the streaming integer GEMV (x quantized to 8 bits
    per 32 columns, as for the GGUF types), 16 rows of x per pass; .to('cpu') gives the tensor back."""

    __slots__ = ("_codes", "_params", "_unit_group", "_xsrc", "_host", "device_index", "shape", "kp", "groups",
                 "units_per_group")

    def __init__(self, gt, index: int):
        op = "to"
        if gt.bits != 4:
            raise ValueError(f"[{op}] the CUDA kernels take 4-bit group weights; this tensor has {gt.bits} bits "
                             f"(dequantize it and quantize to a GGUF type, or run it on the CPU)")
        codes, params, unit_group, xsrc, k, self.units_per_group = group_device_arrays(gt)
        self._host = gt
        self.shape, self.kp, self.groups, self.device_index = gt.shape, int(xsrc.shape[0]), gt.groups, index
        buffers = []
        for a in (codes, params, unit_group, xsrc):
            buf = _cuda.DeviceBuffer(a.nbytes, index)
            _cuda.upload(buf, a.reshape(-1).view(np.uint8), 0)
            buffers.append(buf)
        self._codes, self._params, self._unit_group, self._xsrc = buffers

    @property
    def device(self) -> str:
        return f"cuda:{self.device_index}"

    @property
    def nbytes(self) -> int:
        return int(self._codes.nbytes + self._params.nbytes + self._unit_group.nbytes + self._xsrc.nbytes)

    def to(self, device):
        kind, index = parse_device("CudaGroupTensor.to", device)
        if kind == "cpu":
            return self._host
        return self if index == self.device_index else CudaGroupTensor(self._host, index)

    def dequantize(self, *, stream=None) -> CudaArray:
        return dequantize(self, stream=stream)

    def _args(self):
        n, k = self.shape
        return (self._codes, self._params, self._unit_group, self._xsrc, n, k, self.kp, self.groups,
                self.units_per_group)

    def _matmul(self, x_ptr: int, m: int, y_ptr: int, handle: int, kernel: str) -> None:
        if kernel not in ("auto", "gemv_stream"):
            raise ValueError(f"[matmul] group weights run the 'gemv_stream' kernel only, got kernel={kernel!r}")
        _cuda.group_matmul(*self._args(), x_ptr, m, y_ptr, handle)

    def _dequantize(self, y_ptr: int, handle: int) -> None:
        _cuda.group_dequantize(*self._args(), y_ptr, handle)

    def __repr__(self) -> str:
        return f"CudaGroupTensor(bits=4, shape={self.shape}, groups={self.groups}, device={self.device!r})"


def group_device_arrays(gt):
    """The host arrays a CudaGroupTensor uploads (and _cuda.group_gemv_host takes): codes (n, kp/2) uint8,
    params (n, groups, 2) f32 = (scale, zero), unit_group (kp/32,) int32, xsrc (kp,) int32, k, and the
    chunks per group when uniform (else 0)."""
    kp = int(gt.xsrc.shape[0])
    chunk_start = np.asarray(gt.chunk_start, dtype=np.int64)
    unit_group = np.repeat(np.arange(gt.groups, dtype=np.int32), np.diff(chunk_start)).astype(np.int32)
    if kp % 32 or unit_group.shape[0] != kp // 32:
        raise ValueError(f"[to] inconsistent group layout: {unit_group.shape[0]} chunks for {kp} columns")
    params = np.ascontiguousarray(np.stack([gt.scales, gt.zeros], axis=-1), dtype=np.float32)
    return (np.ascontiguousarray(gt.codes), params, unit_group, np.ascontiguousarray(gt.xsrc, dtype=np.int32),
            gt.shape[1], uniform_units_per_group(chunk_start))


def uniform_units_per_group(chunk_start) -> int:
    """Chunks per group when every group but the last has the same count and the last no more (plain
    groups, act-order too): the kernels then compute a chunk's group instead of loading it. Else 0."""
    sizes = np.diff(np.asarray(chunk_start, dtype=np.int64))
    if sizes.size == 0 or sizes[0] < 1 or np.any(sizes[:-1] != sizes[0]) or sizes[-1] > sizes[0] or sizes[-1] < 1:
        return 0
    return int(sizes[0])


def group_to_device(gt, index: int) -> CudaGroupTensor:
    _require_device("to", index)
    return CudaGroupTensor(gt, index)


_DEVICE_WEIGHTS = (CudaQuantizedTensor, CudaGroupTensor)


def device_layout(qtype: str, shape) -> str:
    """The layout .to('cuda') gives a tensor: tile8 where the type has it and k % 256 == 0, else gguf."""
    if _cuda is None or not hasattr(_cuda, "tile8_types"):
        return "gguf"
    return "tile8" if qtype in _cuda.tile8_types() and shape and shape[-1] % _cuda.tile8_weights == 0 else "gguf"


def to_device(qt, index: int, layout: str | None = None) -> CudaQuantizedTensor:
    """Copy a QuantizedTensor's bytes to GPU `index` once, in `layout` (default: device_layout)."""
    op = "to"
    if layout not in (None, "gguf", "tile8"):
        raise ValueError(f"[{op}] layout must be None, 'gguf' or 'tile8', got {layout!r}")
    _require_device(op, index)
    if qt.qtype not in _cuda.kernel_types():
        raise ValueError(f"[{op}] type {qt.qtype!r} has no CUDA kernels; supported: {', '.join(_cuda.kernel_types())}")
    want = device_layout(qt.qtype, qt.shape)
    if layout is None:
        layout = want
    elif layout not in ("gguf", want):
        raise ValueError(f"[{op}] layout {layout!r} is not available for {qt.qtype} {qt.shape}; use 'gguf' or {want!r}")
    data = np.ascontiguousarray(qt.data)
    if layout == "tile8" and qt.nbytes:
        data = _cuda.tile8_pack(qt.qtype, data.reshape(_rows_of(qt.shape), -1), qt.shape[-1]).reshape(-1)
    buffer = _cuda.DeviceBuffer(qt.nbytes, index)
    if qt.nbytes:
        _cuda.upload(buffer, data, 0)
    return CudaQuantizedTensor(buffer, qt.qtype, qt.shape, index, layout)


def _rows_of(shape) -> int:
    return math.prod(shape[:-1]) if len(shape) > 1 else 1


def dequantize(w: CudaQuantizedTensor, *, stream=None) -> CudaArray:
    """Expand a device tensor to float32 on the same GPU (values identical to the CPU's dequantize)."""
    op = "dequantize"
    if not isinstance(w, _DEVICE_WEIGHTS):
        raise TypeError(f"[{op}] expected a CudaQuantizedTensor or CudaGroupTensor, got {type(w).__name__}")
    handle = 0 if stream is None else _stream_handle(op, stream)
    k = w.shape[-1]
    rows = _rows_of(w.shape)
    out = _cuda.DeviceBuffer(4 * rows * k, w.device_index)
    if rows and k:
        w._dequantize(out.ptr, handle)
    return CudaArray(out, w.shape, w.device_index, handle, keepalive=w)


def _check_out(op: str, out, shape, device_index: int):
    if not isinstance(out, CudaArray):
        raise TypeError(f"[{op}] out must be a CudaArray (from a previous call), got {type(out).__name__}")
    if out.shape != tuple(shape) or out.device_index != device_index:
        raise ValueError(f"[{op}] out must have shape {tuple(shape)} on cuda:{device_index}, "
                         f"got {out.shape} on {out.device}")
    return out


_KERNELS = ("auto", "gemv", "gemv_unstaged", "gemv_f32", "gemm", "mma", "mma_async", "gemv_async", "gemv_stream")


def matmul(x, w: CudaQuantizedTensor, *, stream=None, out: CudaArray | None = None, kernel: str = "auto"):
    """y = x @ W.T on W's GPU. x: numpy (copied in; returns numpy) or a CUDA DLPack producer (torch, CuPy,
    a CudaArray; read in place; returns a CudaArray). x: float32 (..., k) C-contiguous -> (..., n).

    m = rows of x. GEMV kernels for small m: q4_0, q4_1, q8_0, q4_k, q5_k, q6_k (m <= 32) quantize x to
    8 bits per value in blocks of 32 (as llama.cpp's CUDA backend does) and use int8 dot products; the
    other types (m <= 8) keep x in fp32. Larger m: the tensor-core GEMM (fp16 tiles, fp32 accumulation).
    kernel: "auto", or "gemv" / "gemv_unstaged" / "gemv_f32" / "gemm" to force one (tests, benchmarks);
    "mma" / "mma_async": int8 tensor cores (m <= 32; q4_0, q4_1, q8_0; the second stages weights through
    shared memory with cp.async); "gemv_async": the integer GEMV fed through a
    cp.async pipeline (m <= 8; q4_0, q4_1, q8_0, q4_k, q5_k; opt-in: no faster on the H100);
    "gemv_stream": the integer GEMV with x quantized in shared memory by each block of a persistent,
    software-pipelined grid (m <= 8; the same six types; 16-byte quant loads in the tile8 layout).
    "auto" takes "gemv_stream" at m = 1 on the tile8 layout, "gemv" at other m <= 8 and for the K-quants,
    and "mma_async" for q4_0 / q4_1 / q8_0 at 9 <= m <= 32: what measured fastest on an H200."""
    op = "matmul"
    if kernel not in _KERNELS:
        raise ValueError(f"[{op}] kernel must be one of {_KERNELS}, got {kernel!r}")
    if not isinstance(w, _DEVICE_WEIGHTS):
        raise TypeError(f"[{op}] w must be a CudaQuantizedTensor or CudaGroupTensor, got {type(w).__name__}")
    if len(w.shape) != 2:
        raise ValueError(f"[{op}] w must be 2-D (n, k), got shape {w.shape}")
    n, k = w.shape
    if n == 0:
        raise ValueError(f"[{op}] w must be non-empty, got shape {w.shape}")
    dev = w.device_index
    if isinstance(x, np.ndarray):
        return _matmul_host(x, w, stream, kernel)
    if not (hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__")):
        raise TypeError(f"[{op}] x must be a numpy array or a DLPack tensor (torch, CuPy), got {type(x).__name__}")
    dev_type, dev_id = (int(v) for v in x.__dlpack_device__())
    if dev_type == _DL_CPU:
        return _matmul_host(np.from_dlpack(x), w, stream, kernel)
    if dev_type != _DL_CUDA:
        raise ValueError(f"[{op}] x is on DLPack device type {dev_type}; expected CUDA ({_DL_CUDA}) or CPU ({_DL_CPU})")
    if dev_id != dev:
        raise ValueError(f"[{op}] x is on cuda:{dev_id} but w is on cuda:{dev}; move one of them first")
    handle = _producer_stream(x, dev) if stream is None else _stream_handle(op, stream)
    capsule = x.__dlpack__(stream=_dlpack_stream(handle))
    view = _cuda.dlpack_view(capsule)
    if (view["dtype_code"], view["dtype_bits"], view["dtype_lanes"]) != (_DL_FLOAT, 32, 1):
        raise TypeError(f"[{op}] x must be float32 on the GPU, got DLPack dtype code={view['dtype_code']} "
                        f"bits={view['dtype_bits']} lanes={view['dtype_lanes']}; convert with x.float()")
    shape = tuple(view["shape"])
    if len(shape) < 1 or shape[-1] != k:
        raise ValueError(f"[{op}] x must have shape (..., k={k}) to match w {w.shape}, got {shape}")
    if not _is_row_major(shape, view["strides"]):
        raise ValueError(f"[{op}] x must be C-contiguous; call x.contiguous() first")
    m = _rows_of(shape)
    if m == 0:
        raise ValueError(f"[{op}] x and w must be non-empty, got x {shape} and w {w.shape}")
    y_shape = shape[:-1] + (n,)
    y = CudaArray(_cuda.DeviceBuffer(4 * m * n, dev), y_shape, dev, handle) if out is None else \
        _check_out(op, out, y_shape, dev)
    w._matmul(view["ptr"], m, y.ptr, handle, kernel)
    y._stream = handle
    y._keepalive = (capsule, w)
    return y


def _is_row_major(shape, strides) -> bool:
    if strides is None:
        return True
    expected = 1
    for size, stride in zip(reversed(shape), reversed(strides)):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def _matmul_host(x: np.ndarray, w, stream, kernel: str) -> np.ndarray:
    from .ops import _host_matmul_input

    op = "matmul"
    n, k = w.shape
    x2 = np.ascontiguousarray(_host_matmul_input(op, x, w.shape), dtype=np.float32)
    m = x2.shape[0]
    handle = 0 if stream is None else _stream_handle(op, stream)
    dev = w.device_index
    x_dev = _cuda.DeviceBuffer(x2.nbytes, dev)
    _cuda.upload(x_dev, x2, handle)
    y_dev = _cuda.DeviceBuffer(4 * m * n, dev)
    w._matmul(x_dev.ptr, m, y_dev.ptr, handle, kernel)
    y = np.empty((m, n), dtype=np.float32)
    _cuda.download(y_dev.ptr, dev, y, handle)
    return y.reshape(x.shape[:-1] + (n,))
