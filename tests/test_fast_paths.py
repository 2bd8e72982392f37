"""Every SIMD fast path against the reference: identical bytes (quantize), identical float bits
(dequantize), for every ISA this CPU supports.

The generic (scalar) kernels are the spec. Types whose reference is still a placeholder (it raises
RuntimeError "... not implemented") are compared with ggml itself instead where the oracle can
(dequantize from ggml_quantize_chunk blocks or random bytes, q8_K quantize), and skipped otherwise,
so this file holds before and after those references land.
"""

from __future__ import annotations

import ctypes
import functools
import os
import subprocess
import sys

import numpy as np
import pytest

import lowbit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ggml_oracle  # noqa: E402

FAST_ISAS = [isa for isa in lowbit.cpu_info()["supported"] if isa != "generic"]
TYPES = [t["name"] for t in lowbit.types()]
INFO = {t["name"]: t for t in lowbit.types()}

# The kernels each ISA must provide (the rest may fall back to the level below).
EXPECTED = {
    "avx2": {
        "quantize": ["f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q8_k"],
        "dequantize": ["f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q2_k", "q3_k", "q4_k",
                       "q5_k", "q6_k", "q8_k", "iq4_nl", "iq4_xs"],
    },
    "avx512": {"quantize": ["q8_0", "q8_k"], "dequantize": ["q4_0", "q8_0", "q4_k", "q6_k"]},
}

# Where each block keeps its float scales (byte offset, "f16" or "f32"); see csrc/core/blocks.h.
# Random bytes get finite values there, so no NaN/inf scale makes the comparison meaningless.
SCALE_FIELDS = {
    "q4_0": [(0, "f16")], "q4_1": [(0, "f16"), (2, "f16")], "q5_0": [(0, "f16")],
    "q5_1": [(0, "f16"), (2, "f16")], "q8_0": [(0, "f16")], "q8_1": [(0, "f16"), (2, "f16")],
    "q2_k": [(80, "f16"), (82, "f16")], "q3_k": [(108, "f16")], "q4_k": [(0, "f16"), (2, "f16")],
    "q5_k": [(0, "f16"), (2, "f16")], "q6_k": [(208, "f16")], "q8_k": [(0, "f32")],
    "iq4_nl": [(0, "f16")], "iq4_xs": [(0, "f16")],
}


def _is_placeholder(fn) -> bool:
    try:
        fn()
    except RuntimeError as e:
        if "not implemented" in str(e):
            return True
        raise
    return False


@functools.lru_cache(maxsize=None)
def ref_quantize_works(name: str) -> bool:
    bs = INFO[name]["block_size"]
    x = np.linspace(-1, 1, bs, dtype=np.float32).reshape(1, bs)
    return not _is_placeholder(lambda: lowbit.quantize(x, name, isa="generic"))


@functools.lru_cache(maxsize=None)
def ref_dequantize_works(name: str) -> bool:
    info = INFO[name]
    qt = lowbit.QuantizedTensor(np.zeros(info["type_size"], np.uint8), name, (info["block_size"],))
    return not _is_placeholder(lambda: lowbit.dequantize(qt, isa="generic"))


def _shapes(bs: int) -> list[tuple[int, int]]:
    # one block; an odd number of blocks; 7 rows (not a multiple of the thread count)
    shapes = [(1, bs), (3, 5 * bs), (7, 3 * bs)]
    if bs == 1:  # element types: vector body plus a scalar tail
        shapes += [(7, 67), (2, 256)]
    return shapes


def _distributions(rng, rows: int, k: int) -> dict[str, np.ndarray]:
    shape = (rows, k)
    normal = rng.standard_normal(shape)
    ties = rng.integers(-254, 255, size=shape).astype(np.float64)
    ties[:, ::32] = np.where(rng.random((rows, (k + 31) // 32)) < 0.5, -254.0, 254.0)  # d = 2: odd x ties at .5
    outlier = normal.copy()
    outlier[np.arange(rows), rng.integers(0, k, size=rows)] *= 1e3
    sparse = np.where(rng.random(shape) < 0.9, 0.0, normal)
    sparse = np.where((sparse == 0) & (rng.random(shape) < 0.5), -0.0, sparse)
    return {
        "normal": normal,
        "heavy": rng.standard_t(1.5, size=shape),
        "zeros": np.zeros(shape),
        "signed_zeros": np.where(rng.random(shape) < 0.5, -0.0, 0.0),
        "constant": np.repeat(rng.standard_normal((rows, 1)) * 3, k, axis=1),
        "integers": rng.integers(-20, 21, size=shape).astype(np.float64),
        "int_ties": ties,
        "sign_ties": rng.choice([-3.0, 3.0, -1.0, 1.0, 0.0, -0.0], size=shape),  # +a and -a share amax
        "tiny": normal * 1e-30,
        # d = amax/127 is subnormal, 1/d overflows to inf: the reference's float -> int8 casts then
        # see inf/NaN, and ggml's bytes are those of x86's cvttss2si (low byte of 0x80000000)
        "subnormal_scale": normal * 1e-38,
        "huge": normal * 1e30,
        "outlier": outlier,
        "sparse": sparse,
    }


def _cases(name: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    for rows, k in _shapes(INFO[name]["block_size"]):
        for label, x in _distributions(rng, rows, k).items():
            yield f"{label}{rows}x{k}", np.ascontiguousarray(x, dtype=np.float32)


def _finite_f16_bits(rng, n):
    h = rng.integers(0, 1 << 16, size=n, dtype=np.uint32)
    h = np.where((h & 0x7C00) == 0x7C00, h & ~np.uint32(0x4000), h)  # exponent 31 (inf/NaN) -> 15
    return h.astype(np.uint16)


def _finite_f32_bits(rng, n):
    u = rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.uint32)
    return np.where((u & 0x7F800000) == 0x7F800000, u & ~np.uint32(0x40000000), u).astype(np.uint32)


def _random_bytes(name: str, rows: int, k: int, rng) -> np.ndarray:
    info = INFO[name]
    nblocks = k // info["block_size"]
    data = rng.integers(0, 256, size=(rows, nblocks, info["type_size"]), dtype=np.uint8)
    for off, kind in SCALE_FIELDS.get(name, []):
        if kind == "f16":
            data[:, :, off:off + 2] = _finite_f16_bits(rng, rows * nblocks).view(np.uint8).reshape(rows, nblocks, 2)
        else:
            data[:, :, off:off + 4] = _finite_f32_bits(rng, rows * nblocks).view(np.uint8).reshape(rows, nblocks, 4)
    return data.reshape(rows, -1)


def _deq(name: str, data: np.ndarray, k: int, isa: str) -> np.ndarray:
    qt = lowbit.QuantizedTensor(data.reshape(-1).copy(), name, (data.shape[0], k))
    return lowbit.dequantize(qt, isa=isa)


def _assert_same_bits(got: np.ndarray, want: np.ndarray, what: str):
    g = np.ascontiguousarray(got, dtype=np.float32).view(np.uint32)
    w = np.ascontiguousarray(want, dtype=np.float32).view(np.uint32)
    if not np.array_equal(g, w):
        idx = tuple(np.argwhere(g != w)[0])
        raise AssertionError(f"{what}: first differing element {idx}: got {got[idx]!r} ({g[idx]:#010x}), "
                             f"want {want[idx]!r} ({w[idx]:#010x}); {int((g != w).sum())} differ")


def _assert_same_bytes(got: np.ndarray, want: np.ndarray, what: str):
    if not np.array_equal(got, want):
        idx = tuple(np.argwhere(got != want)[0])
        raise AssertionError(f"{what}: first differing byte {idx}: got {got[idx]:#04x}, want {want[idx]:#04x}; "
                             f"{int((got != want).sum())} differ")


# --------------------------------------------------------------------------- against the reference


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("isa", FAST_ISAS)
def test_quantize_matches_reference(isa, name):
    if not ref_quantize_works(name):
        pytest.skip(f"{name} reference quantize not implemented yet")
    for label, x in _cases(name):
        want = lowbit.quantize(x, name, isa="generic").data
        got = lowbit.quantize(x, name, isa=isa).data
        _assert_same_bytes(got, want, f"{isa} quantize {name} [{label}]")


@pytest.mark.parametrize("name", ["q8_0", "q8_1"])
@pytest.mark.parametrize("isa", FAST_ISAS)
def test_activation_quantize_matches_reference(isa, name):
    """matmul's fused activation quantizer (ggml's from_float + the a_ds pairs) against the reference."""
    for label, x in _cases(name):
        want, want_ds = lowbit._core.quantize_activations(x, name, "generic", True)
        got, got_ds = lowbit._core.quantize_activations(x, name, isa, True)
        _assert_same_bytes(got, want, f"{isa} activations {name} [{label}]")
        _assert_same_bits(got_ds, want_ds, f"{isa} activation scales and sums {name} [{label}]")


@pytest.mark.parametrize("name", [t for t in TYPES if INFO[t]["has_imatrix"]])
@pytest.mark.parametrize("isa", FAST_ISAS)
def test_quantize_imatrix_matches_reference(isa, name):
    if not ref_quantize_works(name):
        pytest.skip(f"{name} reference quantize not implemented yet")
    rng = np.random.default_rng(1)
    k = 4 * INFO[name]["block_size"]
    x = rng.standard_normal((5, k)).astype(np.float32)
    im = (rng.random(k) ** 2).astype(np.float32)
    want = lowbit.quantize(x, name, im, isa="generic").data
    _assert_same_bytes(lowbit.quantize(x, name, im, isa=isa).data, want, f"{isa} quantize {name} imatrix")


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("isa", FAST_ISAS)
def test_dequantize_matches_reference(isa, name):
    if not ref_dequantize_works(name):
        pytest.skip(f"{name} reference dequantize not implemented yet")
    rng = np.random.default_rng(2)
    if ref_quantize_works(name):
        for label, x in _cases(name):
            data = lowbit.quantize(x, name, isa="generic").data.reshape(x.shape[0], -1)
            _assert_same_bits(_deq(name, data, x.shape[1], isa), _deq(name, data, x.shape[1], "generic"),
                              f"{isa} dequantize {name} [{label}]")
    for rows, k in _shapes(INFO[name]["block_size"]):
        data = _random_bytes(name, rows, k, rng)
        _assert_same_bits(_deq(name, data, k, isa), _deq(name, data, k, "generic"),
                          f"{isa} dequantize {name} [random bytes {rows}x{k}]")


@pytest.mark.parametrize("name", ["f16", "bf16"])
@pytest.mark.parametrize("isa", FAST_ISAS)
def test_float_conversion_all_bit_patterns(isa, name):
    # Element types convert NaN and inf too: random f32 bit patterns (every class, NaN payloads
    # included), plus the values around each half rounding boundary.
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 1 << 32, size=(4, 4099), dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    want = lowbit.quantize(x, name, isa="generic").data
    _assert_same_bytes(lowbit.quantize(x, name, isa=isa).data, want, f"{isa} quantize {name} random bits")
    halves = np.arange(1 << 16, dtype=np.uint32)
    # the f32 images of every half (normal range) / every bf16, and the ties halfway to the next one
    base, tie = ((halves << 13) + 0x38000000, 0x1000) if name == "f16" else (halves << 16, 0x8000)
    near = np.concatenate([base, base + 1, base - 1, base + tie, (base + tie) | 0x80000000]).astype(np.uint32)
    x = near.view(np.float32).reshape(5, -1)
    want = lowbit.quantize(x, name, isa="generic").data
    _assert_same_bytes(lowbit.quantize(x, name, isa=isa).data, want, f"{isa} quantize {name} rounding edges")
    data = rng.integers(0, 256, size=(3, 2 * 1027), dtype=np.uint8)  # every half / bf16 incl. NaN
    _assert_same_bits(_deq(name, data, 1027, isa), _deq(name, data, 1027, "generic"), f"{isa} dequantize {name}")


# ------------------------------------------------------------------------------ against ggml itself

ORACLE_TYPES = ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs"]
needs_oracle = pytest.mark.skipif(not ggml_oracle.available(), reason="llama-cpp-python's libggml not found")


@needs_oracle
@pytest.mark.parametrize("name", ORACLE_TYPES)
@pytest.mark.parametrize("isa", FAST_ISAS)
def test_dequantize_matches_ggml(isa, name):
    gid = INFO[name]["gguf_id"]
    rng = np.random.default_rng(4)
    for label, x in _cases(name):
        data = ggml_oracle.quantize_chunk(gid, x)
        _assert_same_bits(_deq(name, data, x.shape[1], isa), ggml_oracle.dequantize(gid, data, x.shape[1]),
                          f"{isa} dequantize {name} [{label}] vs ggml")
    for rows, k in _shapes(INFO[name]["block_size"]):
        data = _random_bytes(name, rows, k, rng)
        _assert_same_bits(_deq(name, data, k, isa), ggml_oracle.dequantize(gid, data, k),
                          f"{isa} dequantize {name} [random bytes {rows}x{k}] vs ggml")


def _ggml_q8_k(fn_name: str):
    # libggml-base exports q8_K's reference quantize/dequantize although its type traits omit them.
    fn = getattr(ggml_oracle._lib(), fn_name)
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return fn


@needs_oracle
@pytest.mark.parametrize("isa", FAST_ISAS)
def test_q8_k_matches_ggml(isa):
    quant, dequant = _ggml_q8_k("quantize_row_q8_K_ref"), _ggml_q8_k("dequantize_row_q8_K")
    for label, x in _cases("q8_k"):
        rows, k = x.shape
        want = np.zeros((rows, k // 256 * 292), np.uint8)  # zeroed: ggml leaves bsums of a zero block as found
        for r in range(rows):
            quant(x[r].ctypes.data, want[r].ctypes.data, k)
        got = lowbit.quantize(x, "q8_k", isa=isa).data.reshape(rows, -1)
        _assert_same_bytes(got, want, f"{isa} quantize q8_k [{label}] vs ggml")
        ref = np.zeros((rows, k), np.float32)
        for r in range(rows):
            dequant(want[r].ctypes.data, ref[r].ctypes.data, k)
        _assert_same_bits(_deq("q8_k", want, k, isa), ref, f"{isa} dequantize q8_k [{label}] vs ggml")


# ----------------------------------------------------------------------------------- dispatch


def test_fast_kernels_are_registered():
    info = lowbit.cpu_info()
    level = info["isa"]
    if level == "generic":
        pytest.skip("no fast ISA on this CPU (or LOWBIT_ISA=generic)")
    for isa in ("avx2", "avx512"):
        if isa not in info["supported"] or (isa == "avx512" and level != "avx512"):
            continue
        for op, names in EXPECTED[isa].items():
            for name in names:
                got = info["kernels"][name][op]
                ok = got == isa if isa == level else got != "generic"
                assert ok, f"{op} {name} resolves to {got} at level {level}"


def test_lowbit_isa_env_caps_dispatch():
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(lowbit.__file__)))
    env = dict(os.environ, LOWBIT_ISA="generic", PYTHONPATH=os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]))
    code = "import lowbit, json; i = lowbit.cpu_info(); print(json.dumps([i['isa'], sorted({v for r in i['kernels'].values() for v in r.values()})]))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == '["generic", ["generic"]]'
