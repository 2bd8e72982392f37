"""The SIMD K-quant quantizers (csrc/cpu/quantize_kquant_simd.h) against the scalar reference: the
same bytes on every supported ISA, with and without an importance matrix.

The SIMD searches run one sub-block per lane and pad a row's last chunk of super-blocks, so the
shapes cover 1, 3 and 10 super-blocks per row (full chunks, padded chunks) and odd row counts;
the inputs cover every test distribution plus sub-blocks scaled apart by orders of magnitude (some
scale levels round to 0, so the search's own levels are kept), sub-blocks of zeros next to
non-zero ones (lanes that leave the search early), and exact ties."""

import numpy as np
import pytest

import lowbit
from inputs import DISTRIBUTIONS, make_imatrix, make_input

TYPES = ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k")
ISAS = [isa for isa in lowbit.cpu_info()["supported"] if isa != "generic"]
SHAPES = ((3, 256), (5, 768), (7, 2560))


def scaled_sub_blocks(rows, k, sub, seed):
    """Normal values, each sub-block of `sub` values scaled by 10^U(-6, 3); some sub-blocks zeroed."""
    rng = np.random.default_rng([seed, rows, k, sub])
    x = rng.standard_normal((rows, k // sub, sub)) * 10.0 ** rng.uniform(-6, 3, (rows, k // sub, 1))
    x[rng.random((rows, k // sub)) < 0.1] = 0.0
    return np.ascontiguousarray(x.reshape(rows, k), dtype=np.float32)


def ties(rows, k, seed):
    """Values on a coarse grid (many exact half-way cases and equal candidates)."""
    rng = np.random.default_rng([seed, rows, k, 7])
    return (rng.integers(-16, 17, (rows, k)) * 0.25).astype(np.float32)


def inputs(rows, k):
    for dist in DISTRIBUTIONS:
        yield dist, make_input(dist, rows, k)
    for seed, sub in ((1, 16), (2, 32), (3, 256)):
        yield f"scaled{sub}", scaled_sub_blocks(rows, k, sub, seed)
    yield "ties", ties(rows, k, 0)


@pytest.mark.skipif(not ISAS, reason="no SIMD ISA on this CPU")
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("qtype", TYPES)
@pytest.mark.parametrize("weighted", (False, True), ids=("ref", "imatrix"))
def test_simd_quantize_matches_reference(isa, qtype, weighted):
    assert lowbit.cpu_info()["kernels"][qtype]["quantize"] != "generic", "no SIMD quantizer registered"
    for rows, k in SHAPES:
        imatrix = make_imatrix(k) if weighted else None
        for name, x in inputs(rows, k):
            want = lowbit.quantize(x, qtype, imatrix, isa="generic")
            got = lowbit.quantize(x, qtype, imatrix, isa=isa)
            assert np.asarray(got.data).tobytes() == np.asarray(want.data).tobytes(), (
                f"{qtype} {isa} {'imatrix' if weighted else 'ref'}: {name} rows={rows} k={k} differs"
            )
