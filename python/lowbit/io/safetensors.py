"""safetensors files: a validating reader (one tensor at a time) and an atomic, streaming writer.

Reading::

    from lowbit.io.safetensors import open_safetensors

    with open_safetensors("model.safetensors") as f:
        f.tensors["model.norm.weight"]        # SafetensorInfo(dtype='BF16', shape=(576,), ...)
        w = f.array("model.norm.weight")      # float32 copy (bf16/f16 widened exactly)
        raw = f.raw("model.norm.weight")      # the stored values (bf16 as uint16 bit patterns)

The file is untrusted: the 8-byte header length, the JSON header, every dtype, shape and offset are
checked against the file size before anything is read, and any failure is a lowbit SafetensorsError.
Tensors of dtypes numpy knows are read through the `safetensors` package's numpy API; bf16, which
numpy lacks, is read here as uint16 bit patterns. Both read with pread rather than a memory map, so a
conversion's resident memory is the tensor in hand, not the pages of the whole file it has touched.

Writing: write_safetensors(path, [SafetensorsEntry(name, "BF16", shape, produce), ...]) writes the
header first, then calls each entry's produce() and writes its bytes, so only one tensor is in memory
at a time. The file appears at path only when it is complete (temporary file + rename).
"""

from __future__ import annotations

import json
import logging
import os
import struct
from typing import Callable, Iterable, NamedTuple

import numpy as np

from ..errors import SafetensorsError
from .atomic import atomic_write

__all__ = ["SafetensorInfo", "SafetensorsEntry", "SafetensorsFile", "open_safetensors", "write_safetensors",
           "bf16_bits_to_f32", "f32_to_bf16_bits"]

log = logging.getLogger(__name__)

# The safetensors reference implementation refuses headers over 100 MB; so do we.
MAX_HEADER_BYTES = 100_000_000
_U64 = struct.Struct("<Q")

# safetensors dtype name -> numpy dtype of the stored values (bf16: its bit pattern as uint16)
DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")


class SafetensorInfo(NamedTuple):
    """One tensor of a safetensors file: dtype name ('BF16'), shape, absolute byte offset and size."""

    name: str
    dtype: str
    shape: tuple
    offset: int
    nbytes: int


class SafetensorsEntry(NamedTuple):
    """A tensor to write: produce() returns an array of `shape` whose bytes are stored as `dtype`.

    produce() may return float32 for dtype 'BF16' or 'F16' (rounded to nearest even here), or the
    exact stored representation (uint16 bit patterns for BF16, float16 for F16).
    """

    name: str
    dtype: str
    shape: tuple
    produce: Callable[[], np.ndarray]


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    """bf16 bit patterns (uint16) -> float32, exactly (bf16 is the top half of a float32)."""
    u = np.asarray(bits, dtype=np.uint16).astype(np.uint32)
    u <<= 16  # in place: one float32-sized buffer for a large tensor
    return u.view(np.float32)


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bit patterns, round to nearest even, NaN kept NaN (as ggml and torch do)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((u + (0x7FFF + ((u >> 16) & 1))) >> 16).astype(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, ((u >> 16) | 64).astype(np.uint16), rounded)


# --------------------------------------------------------------------------------------------------
# Reading


def _fail(path: str, msg: str):
    raise SafetensorsError(f"[open_safetensors] {path}: {msg}")


def _parse_header(path: str, size: int, head: bytes, max_header_bytes: int) -> tuple[dict, dict, int]:
    """(tensors by name, __metadata__, data start) from the first bytes of a file of `size` bytes."""
    if size < 8:
        _fail(path, f"truncated: {size} bytes, a safetensors file starts with an 8-byte header length")
    n = _U64.unpack_from(head, 0)[0]
    if n > max_header_bytes:
        _fail(path, f"header length {n} exceeds the limit of {max_header_bytes} bytes")
    if n > size - 8:
        _fail(path, f"truncated: header length {n} but only {size - 8} bytes follow")
    if n < 2:
        _fail(path, f"header length {n} is too small for a JSON object")
    try:
        header = json.loads(head[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        _fail(path, f"header is not valid UTF-8 JSON ({type(e).__name__}: {str(e)[:200]})")
    if not isinstance(header, dict):
        _fail(path, f"header is a JSON {type(header).__name__}, expected an object")
    data_start = 8 + n
    data_size = size - data_start
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        _fail(path, "__metadata__ must map strings to strings")
    tensors = {}
    for name, d in header.items():
        tensors[name] = _tensor_info(path, name, d, data_start, data_size)
    _check_layout(path, list(tensors.values()), data_start)
    return tensors, meta, data_start


def _tensor_info(path: str, name: str, d, data_start: int, data_size: int) -> SafetensorInfo:
    what = f"tensor {name!r}"
    if not isinstance(d, dict) or set(d) - {"dtype", "shape", "data_offsets"} or len(d) != 3:
        got = sorted(d) if isinstance(d, dict) else repr(d)[:100]
        _fail(path, f"{what}: expected keys dtype, shape, data_offsets, got {got}")
    dtype, shape, offsets = d["dtype"], d["shape"], d["data_offsets"]
    if dtype not in DTYPES:
        hint = " (fp8 checkpoints need dequantizing first)" if isinstance(dtype, str) and dtype.startswith("F8") else ""
        _fail(path, f"{what} has dtype {dtype!r}, expected one of {', '.join(DTYPES)}{hint}")
    if not isinstance(shape, list) or len(shape) > 8 or not all(type(x) is int and 0 <= x < 2**63 for x in shape):
        _fail(path, f"{what} has shape {shape!r}, expected a list of at most 8 non-negative integers")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(x) is int for x in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        _fail(path, f"{what} has data_offsets {offsets!r}, expected [begin, end] with 0 <= begin <= end")
    begin, end = offsets
    if end > data_size:
        _fail(path, f"{what} data [{begin}, {end}) lies beyond the data section ({data_size} bytes)")
    count = 1
    for x in shape:
        count *= x
    itemsize = np.dtype(DTYPES[dtype]).itemsize
    if count * itemsize != end - begin:
        _fail(path, f"{what}: {dtype} shape {shape} takes {count * itemsize} bytes, data_offsets give {end - begin}")
    return SafetensorInfo(name, dtype, tuple(shape), data_start + begin, end - begin)


def _check_layout(path: str, infos: list[SafetensorInfo], data_start: int):
    prev = None
    for t in sorted(infos, key=lambda t: (t.offset, t.nbytes)):
        if prev is not None and t.offset < prev.offset + prev.nbytes:
            _fail(path, f"tensors {prev.name!r} and {t.name!r} overlap")
        prev = t


class SafetensorsFile:
    """An open, validated safetensors file. tensors: name -> SafetensorInfo; metadata: __metadata__."""

    def __init__(self, path, max_header_bytes: int = MAX_HEADER_BYTES):
        self.path = os.fspath(path)
        size = os.stat(self.path).st_size
        with open(self.path, "rb") as f:
            head = f.read(8)
            if len(head) == 8:
                n = _U64.unpack_from(head, 0)[0]
                if n <= min(max_header_bytes, size - 8):
                    head += f.read(n)
        self.tensors, self.metadata, self.data_offset = _parse_header(self.path, size, head, max_header_bytes)
        self._file = open(self.path, "rb")
        self._st = None  # the safetensors package's reader, opened on first use

    def raw(self, name: str) -> np.ndarray:
        """The tensor's stored values as a read-only array of its shape (BF16: uint16 bit patterns)."""
        info = self._info(name)
        if info.dtype != "BF16" and info.nbytes:
            return self._safetensors_read(info)
        if self._file is None:
            raise ValueError(f"[SafetensorsFile.raw] {self.path} is closed")
        data = bytearray(info.nbytes)
        if info.nbytes and self._file.seek(info.offset) is not None and self._file.readinto(data) != info.nbytes:
            raise SafetensorsError(f"[SafetensorsFile.raw] {self.path}: tensor {info.name!r} was cut short "
                                   f"(the file changed while open?)")
        return np.frombuffer(data, dtype=np.dtype(DTYPES[info.dtype])).reshape(info.shape)

    def array(self, name: str) -> np.ndarray:
        """A float tensor as float32 (f64 is rounded; f16 and bf16 widen exactly); may be read-only."""
        info = self._info(name)
        if info.dtype not in FLOAT_DTYPES:
            raise SafetensorsError(f"[SafetensorsFile.array] {self.path}: tensor {name!r} is {info.dtype}, "
                                   f"not a float type; use raw()")
        raw = self.raw(name)
        if info.dtype == "BF16":
            return bf16_bits_to_f32(raw)
        return raw.astype(np.float32, copy=False)  # f32 as read: no second copy of a large tensor

    def _safetensors_read(self, info: SafetensorInfo) -> np.ndarray:
        from safetensors import safe_open  # the header was validated above; this reads the bytes

        if self._st is None:
            try:
                self._st = safe_open(self.path, framework="numpy", backend="pread")
            except TypeError:  # safetensors < 0.7 has no backend choice
                self._st = safe_open(self.path, framework="numpy")
        out = self._st.get_tensor(info.name)
        want = np.dtype(DTYPES[info.dtype])
        if out.dtype != want or out.shape != info.shape:  # would mean our parser and theirs disagree
            raise SafetensorsError(f"[SafetensorsFile.raw] {self.path}: tensor {info.name!r} read as "
                                   f"{out.dtype}{out.shape}, header says {want}{info.shape}")
        return out

    def _info(self, name: str) -> SafetensorInfo:
        if name not in self.tensors:
            raise KeyError(f"[SafetensorsFile] no tensor named {name!r} in {self.path}")
        return self.tensors[name]

    def close(self):
        if self._file is not None:
            self._file.close()
        self._file = None
        self._st = None

    def __enter__(self) -> SafetensorsFile:
        return self

    def __exit__(self, *exc):
        self.close()


def open_safetensors(path, *, max_header_bytes: int = MAX_HEADER_BYTES) -> SafetensorsFile:
    """Open and validate a safetensors file; raises SafetensorsError (a ValueError) if malformed."""
    return SafetensorsFile(path, max_header_bytes=max_header_bytes)


# --------------------------------------------------------------------------------------------------
# Writing


def _stored_bytes(entry: SafetensorsEntry, arr) -> np.ndarray:
    arr = np.asarray(arr)
    if tuple(arr.shape) != tuple(entry.shape):
        raise ValueError(f"[write_safetensors] tensor {entry.name!r}: produced shape {arr.shape}, "
                         f"declared {tuple(entry.shape)}")
    if entry.dtype == "BF16" and arr.dtype != np.uint16:
        arr = f32_to_bf16_bits(arr)
    elif entry.dtype == "F16" and arr.dtype != np.float16:
        arr = arr.astype(np.float16)
    want = np.dtype(DTYPES[entry.dtype])
    if arr.dtype.newbyteorder("=") != want.newbyteorder("="):
        raise TypeError(f"[write_safetensors] tensor {entry.name!r}: produced {arr.dtype} for dtype {entry.dtype}")
    return np.ascontiguousarray(arr, dtype=want).reshape(-1).view(np.uint8)


def write_safetensors(path, entries: Iterable[SafetensorsEntry], metadata: dict | None = None) -> int:
    """Write entries (in order) to a safetensors file, one tensor in memory at a time; returns its size.

    The header (8-byte length, JSON padded with spaces to a multiple of 8, as the reference writer
    does) is written first from the declared dtypes and shapes; a produced array that disagrees with
    its declaration raises ValueError and leaves no file at path.
    """
    path = os.fspath(path)
    entries = list(entries)
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for e in entries:
        if e.dtype not in DTYPES:
            raise ValueError(f"[write_safetensors] tensor {e.name!r}: dtype {e.dtype!r}, "
                             f"expected one of {', '.join(DTYPES)}")
        if e.name in header:
            raise ValueError(f"[write_safetensors] duplicate tensor name {e.name!r}")
        n = int(np.prod(e.shape, dtype=np.int64)) * np.dtype(DTYPES[e.dtype]).itemsize
        header[e.name] = {"dtype": e.dtype, "shape": [int(x) for x in e.shape], "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    with atomic_write(path) as f:
        f.write(_U64.pack(len(blob)))
        f.write(blob)
        for e in entries:
            f.write(memoryview(_stored_bytes(e, e.produce())))
    return 8 + len(blob) + offset
