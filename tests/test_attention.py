"""_core.attention_f16 (csrc/core/attention.h): causal grouped-query attention over the f16 KV cache,
against the Python llama.attention() that is its readable spec, and the AVX2 kernel against the scalar
reference. Both C++ kernels round the softmax exactly as the Python path (same C++ row), but sum the
q.k and p.v products in llama.cpp's order (numpy sums its own way), so a probability may land on the
neighbouring f16 value: the outputs agree with numpy to 5e-3 absolute (values ~N(0, 1)), with a much
smaller mean difference; the AVX2 kernel and the scalar reference agree bit for bit."""

import numpy as np
import pytest

import lowbit
from lowbit import _core
from lowbit.model import llama

ISAS = [isa for isa in ("generic", "avx2") if isa in lowbit.cpu_info()["supported"]]

SHAPES = [  # T, n_head, n_head_kv, head_dim, pos0
    (1, 9, 3, 64, 0),
    (1, 9, 3, 64, 37),
    (3, 4, 4, 128, 5),
    (17, 6, 2, 64, 40),
    (17, 3, 1, 80, 0),       # head_dim not a multiple of 32: the 8-wide and scalar tails
    (5, 2, 2, 20, 3),
    (512, 9, 3, 64, 0),
]


def _case(T, H, Hkv, hd, pos0, seed=0):
    rng = np.random.default_rng(seed)
    n_ctx = pos0 + T + 2                       # rows past pos0 + T must not be read
    q = (rng.standard_normal((T, H, hd)) * 2).astype(np.float32)
    k = (rng.standard_normal((n_ctx, Hkv, hd)) * 2).astype(np.float16)
    v = rng.standard_normal((n_ctx, Hkv, hd)).astype(np.float16)
    k[pos0 + T:] = np.float16(np.nan)
    v[pos0 + T:] = np.float16(np.nan)
    return q, k, v


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T%d-H%d-kv%d-hd%d-pos%d" % s)
def test_attention_matches_python_spec(shape, isa):
    T, H, Hkv, hd, pos0 = shape
    if isa == "generic" and T > 100:
        pytest.skip("the scalar kernel on a 512-token prompt is slow; the AVX2 one covers it")
    q, k, v = _case(*shape)
    scale = 1.0 / np.sqrt(hd)
    want = llama.attention(q, k[: pos0 + T], v[: pos0 + T], pos0, scale)
    got = _core.attention_f16(q, k, v, pos0, scale, llama._AVX512, 2, isa)
    assert got.shape == (T, H * hd) and got.dtype == np.float32
    assert np.all(np.isfinite(got))
    err = np.abs(got - want)
    assert err.max() <= 5e-3, err.max()
    assert err.mean() <= 2e-5, err.mean()


@pytest.mark.skipif("avx2" not in ISAS, reason="no AVX2 on this CPU")
@pytest.mark.parametrize("shape", SHAPES[:-1], ids=lambda s: "T%d-H%d-kv%d-hd%d-pos%d" % s)
def test_avx2_kernel_matches_reference(shape):
    q, k, v = _case(*shape, seed=1)
    T, H, Hkv, hd, pos0 = shape
    a = _core.attention_f16(q, k, v, pos0, 0.125, True, 1, "avx2")
    g = _core.attention_f16(q, k, v, pos0, 0.125, True, 1, "generic")
    assert np.abs(a - g).max() <= 5e-3
    assert np.abs(a - g).mean() <= 2e-5
    # head dims that are a multiple of ggml's lane count run llama.cpp's summation order (tinyBLAS for
    # T >= 2, ggml_vec_dot_f16 for T = 1), the same bits in both kernels; v512: 16 lanes, else 8
    for v512, lanes in ((True, 16), (False, 8)):
        if hd % lanes == 0:
            fast = _core.attention_f16(q, k, v, pos0, 0.125, v512, 1, "avx2")
            assert np.array_equal(fast, _core.attention_f16(q, k, v, pos0, 0.125, v512, 1, "generic")), (v512, shape)
    # the thread count does not change any bit
    assert np.array_equal(a, _core.attention_f16(q, k, v, pos0, 0.125, True, 3, "avx2"))


def test_bad_input_is_a_clear_error():
    q, k, v = _case(3, 4, 2, 16, 0)
    with pytest.raises(ValueError, match="attention_f16.*fit the cache"):
        _core.attention_f16(q, k, v, 3, 0.25)
    with pytest.raises(ValueError, match="attention_f16.*float16"):
        _core.attention_f16(q, k.astype(np.float32), v, 0, 0.25)
    with pytest.raises(ValueError, match="attention_f16.*multiple"):
        _core.attention_f16(np.ascontiguousarray(q[:, :3]), k, v, 0, 0.25)
    with pytest.raises(ValueError, match="attention_f16"):
        _core.attention_f16(q, k[:, :, :8], v, 0, 0.25)
