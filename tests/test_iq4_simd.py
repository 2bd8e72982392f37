"""The SIMD IQ4 quantizers (csrc/cpu/quantize_iq4_simd.h) against the scalar reference: the same
bytes on every supported ISA, for iq4_nl and iq4_xs, with and without an importance matrix.

The SIMD search runs one 32-value block per lane and pads a row's last batch of blocks with zero
blocks, so the shapes cover 1 to 80 blocks per row (partial and whole batches of 8 to 32 lanes,
one and several iq4_xs super-blocks) and odd row counts. The inputs cover every test distribution
plus blocks scaled apart by up to 18 orders of magnitude next to blocks of zeros (lanes that take
the zero path while their neighbours search; iq4_xs sub-block scales that round to 0), and exact
ties: values whose candidate-scaled images land exactly on midpoints between levels, equal |x| of
opposite signs, and candidate scales with equal scores."""

import numpy as np
import pytest

import lowbit
from inputs import DISTRIBUTIONS, make_imatrix, make_input

ISAS = [isa for isa in lowbit.cpu_info()["supported"] if isa != "generic"]
KS = {"iq4_nl": (32, 96, 256, 768, 2560), "iq4_xs": (256, 768, 2560)}
SHAPES = {t: [(rows, k) for k in ks for rows in range(3, 8)] for t, ks in KS.items()}


def scaled_blocks(rows, k, seed):
    """Normal values, each 32-block scaled by 10^U(-9, 9); about 1 block in 8 zeroed."""
    rng = np.random.default_rng([seed, rows, k])
    x = rng.standard_normal((rows, k // 32, 32)) * 10.0 ** rng.uniform(-9, 9, (rows, k // 32, 1))
    x[rng.random((rows, k // 32)) < 0.125] = 0.0
    return np.ascontiguousarray(x.reshape(rows, k), dtype=np.float32)


def ties(rows, k, seed):
    """Integers and half-integers in [-127, 127] with +-127 in every block: the first candidate
    scale maps x to -x exactly, so many values sit on the level midpoints (-74, -57.. are integers,
    -115.5, -93.5.. half-integers), and equal |x| of both signs compete for the block maximum."""
    rng = np.random.default_rng([seed, rows, k, 7])
    x = rng.integers(-254, 255, (rows, k)) * 0.5
    x[:, ::32] = 127.0 * rng.choice((-1.0, 1.0), (rows, k // 32))
    x[:, 16::32] = -x[:, ::32]
    return x.astype(np.float32)


def coarse(rows, k, seed):
    """Values on a grid of 1/4 in [-4, 4]: different candidate scales often give the same levels
    and hence equal scores (the search must keep the first)."""
    rng = np.random.default_rng([seed, rows, k, 8])
    return (rng.integers(-16, 17, (rows, k)) * 0.25).astype(np.float32)


def inputs(rows, k):
    for dist in DISTRIBUTIONS:
        yield dist, make_input(dist, rows, k)
    for seed in (1, 2):
        yield f"scaled{seed}", scaled_blocks(rows, k, seed)
    yield "ties", ties(rows, k, 0)
    yield "coarse", coarse(rows, k, 0)


@pytest.mark.skipif(not ISAS, reason="no SIMD ISA on this CPU")
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("qtype", sorted(SHAPES))
@pytest.mark.parametrize("weighted", (False, True), ids=("ref", "imatrix"))
def test_simd_quantize_matches_reference(isa, qtype, weighted):
    assert lowbit.cpu_info()["kernels"][qtype]["quantize"] != "generic", "no SIMD quantizer registered"
    for rows, k in SHAPES[qtype]:
        imatrix = make_imatrix(k) if weighted else None
        for name, x in inputs(rows, k):
            want = lowbit.quantize(x, qtype, imatrix, isa="generic")
            got = lowbit.quantize(x, qtype, imatrix, isa=isa)
            assert np.asarray(got.data).tobytes() == np.asarray(want.data).tobytes(), (
                f"{qtype} {isa} {'imatrix' if weighted else 'ref'}: {name} rows={rows} k={k} differs"
            )
