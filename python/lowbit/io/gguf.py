"""GGUF, llama.cpp's model file: a validating, memory-mapped reader and an atomic writer.

Reading::

    from lowbit.io import GGUFValue, open_gguf, write_gguf

    with open_gguf("model.gguf") as f:
        f.metadata["llama.block_count"]          # 30
        f.tensors["blk.0.ffn_up.weight"]         # TensorInfo(qtype='q4_1', shape=(1536, 576), ...)
        w = f.tensor("blk.0.ffn_up.weight")      # QuantizedTensor viewing the file's bytes (no copy)
        g = f.array("blk.0.attn_norm.weight")    # float32 ndarray

Writing::

    write_gguf("out.gguf",
               {"general.architecture": "llama", "llama.block_count": 30,
                "llama.rope.freq_base": GGUFValue(10000.0, "float32")},
               [("token_embd.weight", qt), ("output_norm.weight", norm)])

Shapes are in numpy order. GGUF lists dims innermost first (ne[0] is k, the dim blocks run along);
lowbit reverses them, so a llama weight that gguf-py lists as [576, 1536] is (1536, 576) = (n_out, k).

Every file is treated as untrusted. The header is parsed here with bounds-checked reads on the map
rather than with gguf-py's GGUFReader, because the reader must never crash or allocate memory on the
word of a count field: every count and length is checked against the bytes left in the file before
anything is read or allocated, so a file can make lowbit allocate at most a small multiple of the
smaller of its size and max_header_bytes (Python objects of the metadata). Any malformed file raises
GGUFError. gguf-py supplies the constants.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import numbers
import os
import struct
import mmap
from collections.abc import Sequence
from typing import Any, Callable, NamedTuple

import numpy as np

from ..errors import GGUFError
from ..ops import QuantizedTensor, _type_table
from .atomic import atomic_write
from .gguf_constants import gguf_constants

gguf = gguf_constants()  # llama.cpp's gguf-py (PyPI "gguf"): the format's constants

__all__ = ["GGUFFile", "GGUFValue", "LazyTensor", "StringArray", "TensorInfo", "open_gguf", "write_gguf"]

log = logging.getLogger(__name__)

VT = gguf.GGUFValueType

_MAGIC = b"GGUF"
_VERSIONS = (2, 3)  # v1 used 32-bit counts and is long gone; v2 and v3 share the little-endian layout
_WRITE_VERSION = 3
_DEFAULT_ALIGNMENT = 32
_ALIGNMENT_KEY = "general.alignment"
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_NAME_BYTES = 63  # GGML_MAX_NAME is 64 with the NUL; llama.cpp refuses files with longer names
_MAX_ARRAY_DEPTH = 8  # gguf-py allows arrays of arrays, llama.cpp none; bounded so recursion is too
_INT64_MAX = 2**63 - 1

# Fixed-size value types: numpy dtype (little-endian, as the file stores them).
_NUMERIC = {
    VT.UINT8: "<u1", VT.INT8: "<i1", VT.UINT16: "<u2", VT.INT16: "<i2",
    VT.UINT32: "<u4", VT.INT32: "<i4", VT.UINT64: "<u8", VT.INT64: "<i8",
    VT.FLOAT32: "<f4", VT.FLOAT64: "<f8", VT.BOOL: "<u1",
}
_INTEGER = {t for t, dt in _NUMERIC.items() if dt[1] in "iu" and t != VT.BOOL}
_FLOAT = {VT.FLOAT32, VT.FLOAT64}

# The fewest bytes one encoded value of each type takes; count * this must fit in what is left.
_MIN_VALUE_BYTES = {t: int(dt[2]) for t, dt in _NUMERIC.items()}
_MIN_VALUE_BYTES[VT.STRING] = 8  # u64 length
_MIN_VALUE_BYTES[VT.ARRAY] = 12  # u32 element type + u64 count
DEFAULT_MAX_HEADER_BYTES = 64 << 20
_HEADER_BYTES = 24  # magic, u32 version, u64 tensor count, u64 kv count
_MIN_KV_BYTES = 8 + 4 + 1  # key length, value type, a one-byte value
_MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8  # name length, n_dims, one dim, type, offset

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


# --------------------------------------------------------------------------------------------------
# Public types


def _value_type(t) -> VT:
    if isinstance(t, str):
        try:
            return VT[t.upper()]
        except KeyError:
            names = ", ".join(v.name.lower() for v in VT)
            raise ValueError(f"[GGUFValue] unknown GGUF value type {t!r}; expected one of: {names}") from None
    try:
        return VT(t)
    except ValueError:
        raise ValueError(f"[GGUFValue] unknown GGUF value type {t!r}") from None


@dataclasses.dataclass(frozen=True)
class GGUFValue:
    """A metadata value with its GGUF type spelled out, for keys whose type a reader checks.

    type: a gguf.GGUFValueType or its name ("uint32", "float32", ...). For a list value, type is the
    type of the elements: GGUFValue([1, 2], "int32") is an array of int32. An array of arrays has
    type "array" and elements that are GGUFValues (or plain lists, typed by the defaults).
    GGUFFile.typed_metadata holds every value of a file in this form, so copying it to write_gguf
    keeps every type.
    """

    value: Any
    type: VT

    def __post_init__(self):
        object.__setattr__(self, "type", _value_type(self.type))

    @property
    def is_array(self) -> bool:
        return isinstance(self.value, (list, tuple, np.ndarray, StringArray))


@dataclasses.dataclass(frozen=True)
class LazyTensor:
    """A tensor that write_gguf asks for only when it reaches it in the file, so a model is written one
    tensor at a time (quantize_model streams through this).

    qtype and shape (numpy order) go into the header; load() returns the data (a QuantizedTensor of
    that qtype and shape, or a float32/float16 ndarray for "f32"/"f16") and is called once, in file
    order, after every earlier tensor's data has been written and dropped.
    """

    qtype: str
    shape: tuple
    load: Callable[[], Any]


class TensorInfo(NamedTuple):
    """One tensor of a GGUF file, as its header describes it.

    qtype: lowbit's type name ("q4_1", "f32"), or gguf-py's name in lower case for types lowbit
    cannot decode ("iq2_xxs"). shape: numpy order (ne reversed), last dim k. offset: absolute byte
    offset of the data in the file (data section start + the header's relative offset); nbytes: its
    size. type_id: the GGUF (ggml) type number.
    """

    name: str
    qtype: str
    shape: tuple
    offset: int
    nbytes: int
    type_id: int

    @property
    def supported(self) -> bool:
        """Whether lowbit can decode this tensor's type (GGUFFile.tensor raises GGUFError if not)."""
        return self.qtype in _type_table()


class StringArray(Sequence):
    """A long string array of a GGUF file's metadata (a vocabulary's tokens, its merges), kept as offsets
    into the file's memory map and decoded when read: a 50k-token vocabulary with its merges is ~10 MB of
    Python str objects (~40 MB for Llama-3's), which a benchmark or a perplexity run would otherwise
    hold for nothing. Validated when the file is opened (bounds, UTF-8), read-only, compares equal to a
    list of the same strings; tolist() gives that list."""

    __slots__ = ("_map", "_starts", "_lengths")
    __hash__ = None

    def __init__(self, owner, starts: np.ndarray, lengths: np.ndarray):
        self._map, self._starts, self._lengths = owner, starts, lengths

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        start, n = int(self._starts[i]), int(self._lengths[i])
        return str(memoryview(self._map)[start:start + n], "utf-8")

    def __iter__(self):
        buf = memoryview(self._map)
        for start, n in zip(self._starts.tolist(), self._lengths.tolist()):
            yield str(buf[start:start + n], "utf-8")

    def tolist(self) -> list[str]:
        return list(self)

    def __eq__(self, other):
        if isinstance(other, (str, bytes)) or not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        return f"StringArray({len(self)} strings)"


# Arrays of at least this many strings are read as a StringArray (shorter ones as a list).
_LAZY_STRINGS = 256


@functools.lru_cache(maxsize=None)
def _ggml_types() -> dict[int, tuple[str, int, int]]:
    """GGUF type id -> (name, block size, bytes per block), lowbit's table first.

    gguf-py's GGML_QUANT_SIZES is used only for types lowbit lacks: its q8_1 entry still says 40
    bytes, while ggml's block_q8_1 has been 36 for years.
    """
    out = {}
    for qt, (block, size) in gguf.GGML_QUANT_SIZES.items():
        out[int(qt)] = (qt.name.lower(), int(block), int(size))
    for row in _type_table().values():
        out[row["gguf_id"]] = (row["name"], row["block_size"], row["type_size"])
    return out


# --------------------------------------------------------------------------------------------------
# Reading


class _Reader:
    """Bounds-checked little-endian reads from the mapped bytes; every failure is a GGUFError.

    Reads stop at `limit`: the end of the file, or the header cap while the header is parsed.
    """

    def __init__(self, buf: memoryview, path: str, limit: int, owner=None):
        self.buf = buf
        self.owner = owner  # what buf views (the memory map), which a StringArray keeps alive
        self.size = len(buf)
        self.limit = min(limit, self.size)
        self.pos = 0
        self.path = path

    def fail(self, msg: str):
        raise GGUFError(f"[open_gguf] {self.path}: {msg}")

    def left(self) -> int:
        return self.limit - self.pos

    def need(self, n: int, what: str):
        if n > self.size - self.pos:
            self.fail(f"truncated: {what} at byte {self.pos} needs {n} bytes, the file has {self.size - self.pos} left")
        if n > self.limit - self.pos:
            self.fail(f"{what} at byte {self.pos} needs {n} bytes, which would take the header past "
                      f"max_header_bytes={self.limit} (raise it if the file is trusted)")

    def u32(self, what: str) -> int:
        self.need(4, what)
        v = _U32.unpack_from(self.buf, self.pos)[0]
        self.pos += 4
        return v

    def u64(self, what: str) -> int:
        self.need(8, what)
        v = _U64.unpack_from(self.buf, self.pos)[0]
        self.pos += 8
        return v

    def string(self, what: str) -> str:
        return self.strings(1, what, one=True)[0]

    def strings(self, count: int, what: str, one: bool = False) -> list[str]:
        return self._scan_strings(count, what, one, lazy=False)

    def string_array(self, count: int, what: str) -> StringArray:
        """count strings, checked as strings() checks them, kept as offsets into the map."""
        return self._scan_strings(count, what, False, lazy=True)

    def _scan_strings(self, count: int, what: str, one: bool, lazy: bool):
        # The hot loop of a tokenizer's 50k-250k strings, so reads are inlined.
        buf, limit, pos, unpack = self.buf, self.limit, self.pos, _U64.unpack_from
        out = []
        if lazy:
            starts, lengths = np.empty(count, np.uint64), np.empty(count, np.uint64)
        for i in range(count):
            if limit - pos < 8:
                self.pos = pos
                self.need(8, f"length of {_item(what, i, one)}")
            n = unpack(buf, pos)[0]
            pos += 8
            if n > limit - pos:
                self.pos = pos
                self.need(n, _item(what, i, one))
            try:
                text = str(buf[pos:pos + n], "utf-8")  # validated now even when kept lazily
            except UnicodeDecodeError as e:
                # `from None` drops the decoder's exception, which holds a copy of the whole string
                raise GGUFError(f"[open_gguf] {self.path}: {_item(what, i, one)} at byte {pos} is not valid "
                                f"UTF-8 ({e.reason} at byte {pos + e.start})") from None
            if lazy:
                starts[i], lengths[i] = pos, n
            else:
                out.append(text)
            pos += n
        self.pos = pos
        return StringArray(self.owner, starts, lengths) if lazy else out

    def numbers(self, vtype: VT, count: int, what: str) -> list:
        dt = np.dtype(_NUMERIC[vtype])
        self.need(count * dt.itemsize, what)
        arr = np.frombuffer(self.buf, dtype=dt, count=count, offset=self.pos)
        if vtype == VT.BOOL:
            if count and arr.max() > 1:
                bad = int(np.argmax(arr > 1))
                self.fail(f"{what}: bool at byte {self.pos + bad} is {int(arr[bad])}, expected 0 or 1")
            arr = arr.astype(bool)
        self.pos += count * dt.itemsize
        return arr.tolist()


def _item(what: str, i: int, one: bool) -> str:
    return what if one else f"{what}[{i}]"


def _read_value(r: _Reader, vtype: int, what: str, depth: int = 0) -> GGUFValue:
    if vtype == VT.STRING:
        return GGUFValue(r.string(what), VT.STRING)
    if vtype in _NUMERIC:
        return GGUFValue(r.numbers(VT(vtype), 1, what)[0], VT(vtype))
    if vtype == VT.ARRAY:
        return _read_array(r, what, depth)
    r.fail(f"{what} has unknown value type {vtype}")


def _read_array(r: _Reader, what: str, depth: int) -> GGUFValue:
    start = r.pos
    elem = r.u32(f"element type of {what}")
    count = r.u64(f"length of {what}")
    if elem not in _MIN_VALUE_BYTES:
        r.fail(f"{what} (array at byte {start}) has unknown element type {elem}")
    if elem == VT.ARRAY and depth + 1 >= _MAX_ARRAY_DEPTH:
        r.fail(f"{what} nests arrays deeper than {_MAX_ARRAY_DEPTH} levels")
    need = count * _MIN_VALUE_BYTES[elem]
    if need > r.left():
        r.fail(f"{what} (array at byte {start}) claims {count} {VT(elem).name.lower()} elements, at least "
               f"{need} bytes, but only {r.left()} remain for the header")
    elem = VT(elem)
    if elem == VT.STRING:
        if count >= _LAZY_STRINGS and r.owner is not None:
            return GGUFValue(r.string_array(count, what), elem)
        return GGUFValue(r.strings(count, what), elem)
    if elem == VT.ARRAY:
        return GGUFValue([_read_array(r, f"{what}[{i}]", depth + 1) for i in range(count)], elem)
    return GGUFValue(r.numbers(elem, count, what), elem)


def _plain(v: GGUFValue):
    """The Python value of what the reader parsed (a copy of lists, so the two dicts share nothing)."""
    if v.type == VT.ARRAY:
        return [_plain(e) for e in v.value]
    return list(v.value) if isinstance(v.value, list) else v.value  # a StringArray is read-only: shared


def _read_header(r: _Reader) -> tuple[int, int, int]:
    r.need(4, "magic")
    magic = bytes(r.buf[0:4])
    if magic != _MAGIC:
        r.fail(f"not a GGUF file: magic is {magic!r}, expected {_MAGIC!r}")
    r.pos = 4
    version = r.u32("version")
    if version not in _VERSIONS:
        hint = " (a big-endian file? lowbit reads little-endian GGUF only)" if version and version & 0xFFFF == 0 else ""
        r.fail(f"unsupported GGUF version {version}{hint}; lowbit reads versions 2 and 3")
    n_tensors = r.u64("tensor count")
    n_kv = r.u64("key-value count")
    # A count is believed only if that many of the smallest possible entries fit in the file.
    need = n_kv * _MIN_KV_BYTES + n_tensors * _MIN_TENSOR_INFO_BYTES
    if need > r.left():
        r.fail(f"header claims {n_tensors} tensors and {n_kv} key-value pairs, which take at least {need} "
               f"bytes, but only {r.left()} follow the header")
    return version, n_tensors, n_kv


def _read_metadata(r: _Reader, n_kv: int) -> dict[str, GGUFValue]:
    kvs: dict[str, GGUFValue] = {}
    for i in range(n_kv):
        at = r.pos
        key = r.string(f"key of key-value pair {i}")
        if key in kvs:
            r.fail(f"duplicate key {key!r} at byte {at}")
        kvs[key] = _read_value(r, r.u32(f"value type of {key!r}"), f"value of {key!r}")
    return kvs


def _alignment(r: _Reader, kvs: dict[str, GGUFValue]) -> int:
    v = kvs.get(_ALIGNMENT_KEY)
    if v is None:
        return _DEFAULT_ALIGNMENT
    if v.type not in _INTEGER or v.is_array:
        r.fail(f"{_ALIGNMENT_KEY} must be an integer, got a {v.type.name.lower()}"
               f"{' array' if v.is_array else ''}")
    a = v.value
    if a <= 0 or a & (a - 1):
        r.fail(f"{_ALIGNMENT_KEY} is {a}, which is not a power of two")
    return a


def _read_tensor_info(r: _Reader, i: int, alignment: int):
    name = r.string(f"name of tensor {i}")
    what = f"tensor {name!r}"
    n_dims = r.u32(f"n_dims of {what}")
    if not 1 <= n_dims <= _MAX_DIMS:
        r.fail(f"{what} has {n_dims} dims; GGUF tensors have 1 to {_MAX_DIMS}")
    ne = [r.u64(f"dim {j} of {what}") for j in range(n_dims)]
    for j, n in enumerate(ne):
        # ggml reads ne as int64; llama.cpp divides by each dim, so an empty dim would crash it
        if not 1 <= n <= _INT64_MAX:
            r.fail(f"{what} dim {j} is {n}; dims must be in [1, 2**63)")
    type_id = r.u32(f"type of {what}")
    rel_offset = r.u64(f"data offset of {what}")
    info = _ggml_types().get(type_id)
    if info is None:
        r.fail(f"{what} has unknown GGML type id {type_id}")
    qtype, block, type_size = info
    if ne[0] % block:
        r.fail(f"{what} ({qtype}) has ne[0]={ne[0]}, not a multiple of the block size {block}")
    n_elements = 1
    for n in ne:
        n_elements *= n
    nbytes = n_elements // block * type_size
    if n_elements > _INT64_MAX or nbytes > _INT64_MAX:
        r.fail(f"{what} with dims {ne} overflows int64")
    if nbytes > r.size:
        r.fail(f"{what} ({qtype}, dims {ne}) takes {nbytes} bytes, more than the whole file ({r.size})")
    if rel_offset % alignment:
        r.fail(f"{what} data offset {rel_offset} is not a multiple of the alignment {alignment}")
    shape = tuple(reversed(ne))
    return TensorInfo(name, qtype, shape, rel_offset, nbytes, type_id)


def _check_data_layout(r: _Reader, tensors: list[TensorInfo]):
    """The data of every tensor lies inside the file and no two tensors share a byte."""
    prev = None
    for t in sorted(tensors, key=lambda t: t.offset):
        end = t.offset + t.nbytes
        if end > r.size:
            r.fail(f"tensor {t.name!r} data [{t.offset}, {end}) lies beyond the end of the file ({r.size} bytes)")
        if prev is not None and t.offset < prev.offset + prev.nbytes:
            r.fail(f"tensors {prev.name!r} [{prev.offset}, {prev.offset + prev.nbytes}) and {t.name!r} "
                   f"[{t.offset}, {end}) overlap")
        prev = t


def _parse(buf: memoryview, path: str, max_header_bytes: int, owner=None) -> dict:
    r = _Reader(buf, path, max_header_bytes, owner)
    version, n_tensors, n_kv = _read_header(r)
    kvs = _read_metadata(r, n_kv)
    alignment = _alignment(r, kvs)
    infos: list[TensorInfo] = []
    names: set[str] = set()
    for i in range(n_tensors):
        at = r.pos
        t = _read_tensor_info(r, i, alignment)
        if t.name in names:
            r.fail(f"duplicate tensor name {t.name!r} at byte {at}")
        names.add(t.name)
        infos.append(t)
    data_offset = -(-r.pos // alignment) * alignment
    r.limit = r.size
    infos = [t._replace(offset=data_offset + t.offset) for t in infos]
    _check_data_layout(r, infos)
    return dict(version=version, alignment=alignment, data_offset=data_offset, kvs=kvs, infos=infos)


class GGUFFile:
    """An open, validated GGUF file whose tensor data stays in a read-only memory map.

    version: 2 or 3. alignment: of the data section and each tensor (general.alignment, default 32).
    data_offset: where the data section starts. metadata: key -> Python value (int, float, bool, str,
    or list of these). typed_metadata: key -> GGUFValue, the same values with their GGUF types.
    tensors: name -> TensorInfo, in file order.

    Use it as a context manager or call close(). QuantizedTensors taken from the file stay valid
    after close(): they keep the memory map alive until they are garbage collected. As with any
    memory map, the file must not be truncated or rewritten in place while its tensors are in use
    (write_gguf replaces files by renaming, which is safe).
    """

    def __init__(self, path, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES):
        self.path = os.fspath(path)
        size = os.stat(self.path).st_size
        if size == 0:
            # np.memmap refuses empty files with a bare ValueError; say what is wrong instead.
            raise GGUFError(f"[open_gguf] {self.path}: the file is empty")
        self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        with memoryview(self._map) as buf:
            parsed = _parse(buf, self.path, max_header_bytes, self._map)
        self.version: int = parsed["version"]
        self.alignment: int = parsed["alignment"]
        self.data_offset: int = parsed["data_offset"]
        self.typed_metadata: dict[str, GGUFValue] = parsed["kvs"]
        self.metadata: dict[str, Any] = {k: _plain(v) for k, v in self.typed_metadata.items()}
        self.tensors: dict[str, TensorInfo] = {t.name: t for t in parsed["infos"]}
        log.debug("opened %s: GGUF v%d, %d keys, %d tensors", self.path, self.version, len(self.metadata),
                  len(self.tensors))

    def _info(self, name: str, op: str) -> TensorInfo:
        if self._map is None:
            raise ValueError(f"[{op}] {self.path} is closed")
        info = self.tensors.get(name)
        if info is None:
            raise KeyError(f"[{op}] no tensor named {name!r} in {self.path}")
        if not info.supported:
            raise GGUFError(f"[{op}] tensor {name!r} in {self.path} has type {info.qtype} "
                            f"(GGUF type {info.type_id}), which is not supported by lowbit")
        return info

    def tensor(self, name: str) -> QuantizedTensor:
        """The tensor's bytes as a QuantizedTensor, a read-only view into the map (nothing is copied)."""
        info = self._info(name, "GGUFFile.tensor")
        data = self._map[info.offset:info.offset + info.nbytes]
        return QuantizedTensor(data, info.qtype, info.shape)

    def release(self, name: str, start: int = 0, stop: int | None = None) -> None:
        """Drop the pages of a tensor's data, or of its bytes [start, stop), from this process's memory
        (madvise MADV_DONTNEED on that range of the map). The page cache keeps them; a later read
        faults them back in. Streaming code calls this after each tensor (or stretch of one) so the
        resident size stays at what is being worked on, not the model."""
        info = self._info(name, "GGUFFile.release")
        stop = info.nbytes if stop is None else stop
        if not 0 <= start <= stop <= info.nbytes:
            raise ValueError(f"[GGUFFile.release] range [{start}, {stop}) is outside {name!r}'s {info.nbytes} bytes")
        mm = getattr(self._map, "_mmap", None)
        if mm is None or not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            return
        page = mmap.PAGESIZE
        begin = info.offset + start
        begin -= begin % page
        end = min(len(self._map), info.offset + stop)
        if end > begin:
            mm.madvise(mmap.MADV_DONTNEED, begin, end - begin)

    def array(self, name: str) -> np.ndarray:
        """The tensor dequantized to a new float32 array of its shape (meant for norms and small tensors)."""
        return self.tensor(name).dequantize()

    def close(self):
        """Drop this object's reference to the map (views already taken keep it alive)."""
        self._map = None

    def __enter__(self) -> GGUFFile:
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._map is None else "open"
        return (f"GGUFFile({self.path!r}, v{self.version}, {len(self.metadata)} keys, "
                f"{len(self.tensors)} tensors, {state})")


def open_gguf(path, *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> GGUFFile:
    """Open a GGUF v2/v3 file: validate its whole header, memory-map its data read-only.

    Raises GGUFError (a ValueError) for anything malformed: truncation, bad magic or version, counts
    or lengths the file cannot hold, unknown value or tensor types, bad dims or alignment, tensor
    data outside the file or overlapping, duplicate names, invalid UTF-8. OSError as usual for a
    missing or unreadable file. Tensors of types lowbit cannot decode are listed; reading their data
    raises GGUFError.

    max_header_bytes: the header (metadata and tensor list) must end within this many bytes. Parsed
    metadata takes up to ~20x its size in Python objects, so the cap bounds what a hostile header
    inside a huge model file can make lowbit allocate. The default, 64 MiB, is several times the
    largest real headers (a 256k-token vocabulary with its merges takes 10-20 MB).
    """
    return GGUFFile(path, max_header_bytes=max_header_bytes)


# --------------------------------------------------------------------------------------------------
# Writing


def _fail(msg: str, exc=ValueError):
    raise exc(f"[write_gguf] {msg}")


def _default_int_type(values: list[int], scalar: bool) -> VT:
    lo, hi = min(values), max(values)
    if scalar and 0 <= lo and hi < 2**32:
        return VT.UINT32  # llama.cpp reads counts, sizes and token ids as uint32 and checks the type
    if -(2**31) <= lo and hi < 2**31:
        return VT.INT32
    if -(2**63) <= lo and hi < 2**63:
        return VT.INT64
    if 0 <= lo and hi < 2**64:
        return VT.UINT64
    _fail(f"integer {hi if hi >= 2**64 else lo} does not fit in any GGUF integer type")


_NUMPY_KIND = {"b": VT.BOOL, "U": VT.STRING}
_NUMPY_DTYPE = {np.dtype(dt).newbyteorder("="): t for t, dt in _NUMERIC.items() if t != VT.BOOL}


def _numpy_type(dtype: np.dtype, where: str) -> VT:
    if dtype.kind in _NUMPY_KIND:
        return _NUMPY_KIND[dtype.kind]
    if dtype == np.float16:
        return VT.FLOAT32
    t = _NUMPY_DTYPE.get(dtype.newbyteorder("="))
    if t is None:
        _fail(f"{where}: numpy dtype {dtype} has no GGUF value type", TypeError)
    return t


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _infer(value, where: str) -> GGUFValue:
    """The GGUF type a plain Python value gets (see write_gguf)."""
    if isinstance(value, GGUFValue):
        return value
    if isinstance(value, (bool, np.bool_)):
        return GGUFValue(bool(value), VT.BOOL)
    if isinstance(value, (np.integer, np.floating)):
        return GGUFValue(value.item(), _numpy_type(value.dtype, where))
    if _is_int(value):
        return GGUFValue(int(value), _default_int_type([int(value)], scalar=True))
    if isinstance(value, float):
        return GGUFValue(value, VT.FLOAT32)
    if isinstance(value, str):
        return GGUFValue(value, VT.STRING)
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            _fail(f"{where}: arrays must be 1-D, got shape {value.shape}")
        return GGUFValue(value.tolist(), _numpy_type(value.dtype, where))
    if isinstance(value, StringArray):
        return GGUFValue(value, VT.STRING)
    if isinstance(value, (list, tuple)):
        return GGUFValue(list(value), _infer_element_type(value, where))
    _fail(f"{where}: cannot store a {type(value).__name__} in GGUF", TypeError)


def _infer_element_type(items, where: str) -> VT:
    if not items:
        _fail(f"{where}: cannot infer the element type of an empty list; "
              f"wrap it as GGUFValue([], 'int32') (or the type a reader expects)")
    if all(isinstance(x, (bool, np.bool_)) for x in items):
        return VT.BOOL
    if all(isinstance(x, str) for x in items):
        return VT.STRING
    if all(_is_int(x) for x in items):
        return _default_int_type([int(x) for x in items], scalar=False)
    if all(isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)) for x in items):
        return VT.FLOAT32
    if all(isinstance(x, (list, tuple, np.ndarray, GGUFValue)) for x in items):
        return VT.ARRAY
    kinds = sorted({type(x).__name__ for x in items})
    _fail(f"{where}: a list mixes {', '.join(kinds)}; GGUF arrays have one element type "
          f"(wrap as GGUFValue(values, type) to choose one)", TypeError)


def _encode_str(s, where: str) -> bytes:
    if not isinstance(s, str):
        _fail(f"{where}: expected a str, got {type(s).__name__}", TypeError)
    try:
        b = s.encode("utf-8")
    except UnicodeEncodeError as e:
        _fail(f"{where}: string is not encodable as UTF-8 ({e.reason})")
    return _U64.pack(len(b)) + b


def _encode_numbers(items, vtype: VT, where: str) -> bytes:
    if vtype == VT.BOOL:
        if not all(isinstance(x, (bool, np.bool_)) for x in items):
            _fail(f"{where}: bool values must be True or False", TypeError)
        return bytes(bool(x) for x in items)
    dt = np.dtype(_NUMERIC[vtype])
    if vtype in _INTEGER:
        if not all(_is_int(x) for x in items):
            _fail(f"{where}: {vtype.name.lower()} values must be integers", TypeError)
        ints = [int(x) for x in items]
        info = np.iinfo(dt)
        if ints and (min(ints) < info.min or max(ints) > info.max):
            bad = min(ints) if min(ints) < info.min else max(ints)
            _fail(f"{where}: {bad} is out of range for {vtype.name.lower()} [{info.min}, {info.max}]")
        return np.array(ints, dtype=dt).tobytes()
    if not all(isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)) for x in items):
        _fail(f"{where}: {vtype.name.lower()} values must be real numbers", TypeError)
    try:
        wide = np.array([float(x) for x in items], dtype=np.float64)
    except OverflowError:  # an int beyond float64's range
        _fail(f"{where}: a value overflows {vtype.name.lower()}")
    with np.errstate(over="ignore"):  # reported below, by name
        out = wide.astype(dt)
    if np.any(np.isfinite(wide) & ~np.isfinite(out)):
        _fail(f"{where}: a value overflows {vtype.name.lower()}")
    return out.tobytes()


def _encode_array(v: GGUFValue, where: str, depth: int) -> bytes:
    if depth >= _MAX_ARRAY_DEPTH:
        _fail(f"{where}: arrays nest deeper than {_MAX_ARRAY_DEPTH} levels")
    items = v.value.tolist() if isinstance(v.value, np.ndarray) else list(v.value)
    parts = [_U32.pack(v.type), _U64.pack(len(items))]
    if v.type == VT.STRING:
        parts += [_encode_str(s, f"{where}[{i}]") for i, s in enumerate(items)]
    elif v.type == VT.ARRAY:
        for i, e in enumerate(items):
            inner = _infer(e, f"{where}[{i}]")
            if not inner.is_array:
                _fail(f"{where}[{i}]: an array of arrays needs list elements, got {type(inner.value).__name__}",
                      TypeError)
            parts.append(_encode_array(inner, f"{where}[{i}]", depth + 1))
    else:
        parts.append(_encode_numbers(items, v.type, where))
    return b"".join(parts)


def _encode_kv(key, value, where: str) -> bytes:
    if not isinstance(key, str) or not key:
        _fail(f"metadata keys must be non-empty str, got {key!r}", TypeError)
    v = _infer(value, where)
    if v.is_array:
        body = _U32.pack(VT.ARRAY) + _encode_array(v, where, 0)
    elif v.type == VT.STRING:
        body = _U32.pack(VT.STRING) + _encode_str(v.value, where)
    elif v.type == VT.ARRAY:
        _fail(f"{where}: type array needs a list value", TypeError)
    else:
        body = _U32.pack(v.type) + _encode_numbers([v.value], v.type, where)
    return _encode_str(key, f"key {key!r}") + body


def _resolve_alignment(metadata: dict, alignment) -> tuple[int, dict]:
    """The alignment to write, and the metadata with general.alignment as llama.cpp needs it (uint32)."""
    meta = dict(metadata)
    given = meta.get(_ALIGNMENT_KEY)
    if isinstance(given, GGUFValue):
        given = given.value
    if given is not None and not _is_int(given):
        _fail(f"metadata {_ALIGNMENT_KEY} must be an integer, got {given!r}", TypeError)
    if given is not None and alignment is not None and int(given) != alignment:
        _fail(f"metadata {_ALIGNMENT_KEY}={given!r} disagrees with alignment={alignment}")
    if alignment is None:
        alignment = int(given) if given is not None else _DEFAULT_ALIGNMENT
    if not _is_int(alignment) or alignment < 8 or alignment & (alignment - 1) or alignment >= 2**32:
        _fail(f"alignment must be a power of two >= 8 (the GGUF spec asks for a multiple of 8), got {alignment!r}")
    # llama.cpp reads general.alignment with gguf_get_val_u32, which aborts on any other type.
    if given is not None or alignment != _DEFAULT_ALIGNMENT:
        meta[_ALIGNMENT_KEY] = GGUFValue(int(alignment), VT.UINT32)
    return int(alignment), meta


def _tensor_payload(name, t, where: str) -> tuple[bytes, tuple, int, np.ndarray | None]:
    """(encoded name, shape, GGUF type id, uint8 data) of one tensor to write; data is None for a
    LazyTensor (loaded when written)."""
    if not isinstance(name, str) or not name:
        _fail(f"{where}: tensor names must be non-empty str, got {name!r}", TypeError)
    encoded = _encode_str(name, where)
    if len(encoded) - 8 > _MAX_NAME_BYTES:
        _fail(f"{where}: name is {len(encoded) - 8} bytes; llama.cpp allows at most {_MAX_NAME_BYTES}")
    if isinstance(t, LazyTensor):
        row = _type_table().get(t.qtype)
        if row is None:
            _fail(f"{where}: unknown qtype {t.qtype!r} for a LazyTensor")
        qtype, shape, data = t.qtype, tuple(int(s) for s in t.shape), None
        if shape and shape[-1] % row["block_size"]:
            _fail(f"{where}: k={shape[-1]} is not a multiple of {qtype}'s block size {row['block_size']}")
    elif isinstance(t, QuantizedTensor):
        qtype, shape, data = t.qtype, t.shape, np.ascontiguousarray(t.data)
    elif isinstance(t, np.ndarray):
        if t.dtype not in (np.float32, np.float16):
            _fail(f"{where}: plain arrays must be float32 or float16, got {t.dtype}; quantize others first",
                  TypeError)
        qtype = "f32" if t.dtype == np.float32 else "f16"
        shape = t.shape
        data = np.ascontiguousarray(t, dtype=t.dtype.newbyteorder("<")).reshape(-1).view(np.uint8)
    else:
        _fail(f"{where}: expected a QuantizedTensor or numpy array, got {type(t).__name__}", TypeError)
    if not 1 <= len(shape) <= _MAX_DIMS or min(shape) < 1:
        _fail(f"{where}: shape {shape} must have 1 to {_MAX_DIMS} dims, each >= 1")
    return encoded, tuple(shape), _type_table()[qtype]["gguf_id"], data


def _mapped_files(arr: np.ndarray):
    """Files an array is a memory-mapped view of (np.memmap anywhere along its .base chain)."""
    while isinstance(arr, np.ndarray):
        if isinstance(arr, np.memmap) and getattr(arr, "filename", None):
            yield arr.filename
        arr = arr.base


def _pad(n: int, alignment: int) -> int:
    return -n % alignment


def _nbytes(shape: tuple, type_id: int) -> int:
    _, block, type_size = _ggml_types()[type_id]
    n = 1
    for d in shape:
        n *= d
    return n // block * type_size


def _check_not_mapped_from(path: str, name: str, data: np.ndarray):
    if os.path.exists(path):
        for src in _mapped_files(data):
            if os.path.exists(src) and os.path.samefile(src, path):
                _fail(f"refusing to overwrite {path}: tensor {name!r} is memory-mapped from it; "
                      f"write to another path and rename afterwards")


def _load_lazy(name: str, lazy: LazyTensor, path: str) -> np.ndarray:
    """Call a LazyTensor's load() and check it delivered what the header promised."""
    where = f"tensor {name!r}"
    _, shape, type_id, data = _tensor_payload(name, lazy.load(), where)
    want_id = _type_table()[lazy.qtype]["gguf_id"]
    if type_id != want_id or shape != tuple(int(s) for s in lazy.shape):
        _fail(f"{where}: load() returned {_ggml_types()[type_id][0]} {shape}, the header says "
              f"{lazy.qtype} {tuple(lazy.shape)}")
    _check_not_mapped_from(path, name, data)
    return data


def write_gguf(path, metadata: dict, tensors, alignment: int | None = None) -> None:
    """Write a GGUF v3 file that llama.cpp loads, atomically.

    metadata: key -> value, written in order. A GGUFValue fixes the type; plain values get:
      bool -> bool; str -> string; float -> float32 (llama.cpp's float keys are float32);
      int -> uint32 when in [0, 2**32) (what llama.cpp reads counts, sizes and token ids as; it
      checks key types), int32 when negative, else int64/uint64;
      numpy scalars and 1-D arrays -> their own dtype (float16 -> float32);
      list -> array of one element type: ints -> int32 (as llama.cpp's token types) or int64 when
      needed, floats -> float32, str -> string, bools -> bool, lists -> array of arrays.
      GGUFFile.typed_metadata passes every type through unchanged.
    tensors: sequence of (name, QuantizedTensor or float32/float16 ndarray or LazyTensor), written in
      order with shapes in numpy order (last dim k). Names at most 63 UTF-8 bytes, unique. A
      LazyTensor's data is loaded when it is written, so at most one of them is in memory at a time.
    alignment: of each tensor's data, a power of two >= 8; None takes general.alignment from the
      metadata or the default 32. general.alignment is written (as uint32) when it is not 32.

    The file is written next to path under a temporary name and renamed over path at the end, so an
    error leaves no partial file at path. Refuses to overwrite a file the tensors are mapped from.
    Raises ValueError / TypeError naming the bad key or tensor.
    """
    path = os.fspath(path)
    if not isinstance(metadata, dict):
        _fail(f"metadata must be a dict, got {type(metadata).__name__}", TypeError)
    alignment, meta = _resolve_alignment(metadata, alignment)
    kv_bytes = [_encode_kv(k, v, f"metadata {k!r}") for k, v in meta.items()]

    entries = []
    lazies = []
    names = set()
    for i, item in enumerate(tensors):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            _fail(f"tensors[{i}] must be a (name, tensor) pair", TypeError)
        name, t = item
        entries.append(_tensor_payload(name, t, f"tensor {name!r}"))
        if name in names:
            _fail(f"duplicate tensor name {name!r}")
        names.add(name)
        if entries[-1][3] is not None:
            _check_not_mapped_from(path, name, entries[-1][3])
        lazies.append(t if isinstance(t, LazyTensor) else None)

    infos = []
    offset = 0  # llama.cpp requires each tensor right after the previous one, padded to the alignment
    for encoded, shape, type_id, data in entries:
        ne = tuple(reversed(shape))
        infos.append(encoded + _U32.pack(len(ne)) + b"".join(_U64.pack(n) for n in ne)
                     + _U32.pack(type_id) + _U64.pack(offset))
        nbytes = _nbytes(shape, type_id)
        offset += nbytes + _pad(nbytes, alignment)
    header = b"".join([_MAGIC, _U32.pack(_WRITE_VERSION), _U64.pack(len(entries)), _U64.pack(len(kv_bytes)),
                       *kv_bytes, *infos])
    header += bytes(_pad(len(header), alignment))

    with atomic_write(path) as f:
        f.write(header)
        for i, (encoded, _, _, data) in enumerate(entries):
            if lazies[i] is not None:
                data = _load_lazy(str(encoded[8:], "utf-8"), lazies[i], path)
            f.write(memoryview(data))
            f.write(bytes(_pad(data.nbytes, alignment)))
            del data
    log.debug("wrote %s: %d keys, %d tensors, %d bytes", path, len(kv_bytes), len(entries), len(header) + offset)
