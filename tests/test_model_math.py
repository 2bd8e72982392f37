"""The forward pass's softmax and SiLU in C++ (csrc/core/ggml_math.h) against their spec, the numpy
emulation of ggml's vector exp in lowbit.model.ggml_numerics: bit-identical on every ISA present, for
both of ggml's exp variants, with causal masks, extremes and the f16 rounding of the probabilities."""

import numpy as np
import pytest

import lowbit
from lowbit import _core
from lowbit.model import ggml_numerics

ISAS = [isa for isa in ("generic", "avx2") if isa in lowbit.cpu_info()["supported"]]


def _inputs(seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((37, 301)) * 30).astype(np.float32)
    x[0, :8] = [-200.0, 200.0, -88.7, 88.8, 0.0, -0.0, 1e-30, -103.0]
    x[1] = rng.standard_normal(301).astype(np.float32) * 1e-3
    return x


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("avx512", [True, False])
def test_silu_matches_emulation(isa, avx512):
    x = _inputs(1)
    assert np.array_equal(_core.ggml_silu(x, avx512, isa), ggml_numerics.silu(x, avx512))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("avx512", [True, False])
@pytest.mark.parametrize("round_f16", [False, True])
def test_causal_softmax_matches_emulation(isa, avx512, round_f16):
    rng = np.random.default_rng(2)
    heads, T, S = 3, 37, 45                      # S - T earlier positions in the cache
    s = (rng.standard_normal((heads, T, S)) * 6).astype(np.float32)
    s[0, 0, :3] = [80.0, -80.0, 0.0]
    pos0 = S - T
    mask = np.arange(S)[None, :] > (pos0 + np.arange(T))[:, None]
    want = ggml_numerics.softmax(np.where(mask, -np.inf, s).astype(np.float32), avx512)
    if round_f16:
        want = want.astype(np.float16).astype(np.float32)
    got = s.copy()
    _core.ggml_softmax(got, np.tile(pos0 + 1 + np.arange(T), heads).astype(np.int64), avx512, round_f16, 0, isa)
    assert np.array_equal(got, want)
    full = s.copy()
    _core.ggml_softmax(full, None, avx512, False, 1, isa)  # no mask
    assert np.array_equal(full, ggml_numerics.softmax(s, avx512))


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="ggml_softmax"):
        _core.ggml_softmax(np.zeros((2, 4), np.float64))
    with pytest.raises(ValueError, match="valid"):
        _core.ggml_softmax(np.zeros((2, 4), np.float32), np.array([1, 5], np.int64))
    with pytest.raises(ValueError, match="ggml_silu"):
        _core.ggml_silu(np.zeros((2, 4), np.float32)[:, ::2])
