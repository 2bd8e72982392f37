"""q4_0 / q4_1 / q8_0 matmuls in llama.cpp's arithmetic, bit for bit (csrc/cpu/avx2/matmul_ggml_order.h).

The spec is written here in numpy, from ggml's x86 code: ggml_vec_dot_q4_1_q8_1 / ggml_vec_dot_q8_0_q8_0
(llamafile's tinyBLAS does the same for q8_0 batches): 8 float lanes per output, lane l adding block by
block fma(d_w * d_a, float(int sum of the products at bytes 4l..4l+3), lane), the lanes summed pairwise
(hi + lo, then 0+2 / 1+3, then 0+1), q4_1's m_w * s_a summed block by block and added last; and q4_0 as
llama.cpp repacks it (rows a multiple of 8): one accumulator per output, fma(float(block int dot),
d_w * d_a, acc). A fused multiply-add is emulated in float64 (the product of an f32 and a small integer
is exact there), then rounded to float32. Every SIMD ISA must give exactly these bits at any thread
count; with llama-cpp-python installed, ggml's own mul_mat is checked too.
"""

import numpy as np
import pytest

import lowbit
from lowbit import _core

ISAS = [i for i in ("avx2", "avx512", "neon", "neon_dotprod") if i in lowbit.cpu_info()["supported"]]
pytestmark = pytest.mark.skipif(not ISAS, reason="the ggml-order kernels are SIMD kernels (AVX2, AVX-512, NEON)")
f32 = np.float32


def _f16(raw: np.ndarray) -> np.ndarray:
    return raw.copy().view(np.float16).astype(np.float32)[..., 0]


def _acts(x, dot):
    """x's quantization as matmul does it: (m, nb) d, s (q8_1 only) and (m, nb, 32) int quants."""
    a = lowbit.quantize(x, dot).data.reshape(x.shape[0], x.shape[1] // 32, -1)
    d = _f16(a[..., 0:2])
    s = _f16(a[..., 2:4]) if dot == "q8_1" else None
    q = a[..., -32:].view(np.int8).astype(np.int64)
    return d, s, q


def _weights(W, qtype):
    n, nb = W.shape[0], W.shape[1] // 32
    blk = W.data.reshape(n, nb, -1)
    d = _f16(blk[..., 0:2])
    if qtype == "q8_0":
        return d, None, blk[..., 2:34].view(np.int8).astype(np.int64)
    off = 4 if qtype == "q4_1" else 2
    qs = blk[..., off:off + 16].astype(np.int64)
    q = np.concatenate([qs & 15, qs >> 4], axis=-1)  # values 0-15 are the low nibbles
    return d, (_f16(blk[..., 2:4]) if qtype == "q4_1" else None), (q - 8 if qtype == "q4_0" else q)


def _fma(a, b, c):
    return (a.astype(np.float64) * b + c.astype(np.float64)).astype(f32)


def spec_vec_dot(x, W, qtype):
    da, sa, qa = _acts(x, "q8_1" if qtype == "q4_1" else "q8_0")
    dw, mw, qw = _weights(W, qtype)
    m, n, nb = x.shape[0], W.shape[0], W.shape[1] // 32
    lanes = np.einsum("ibl,jbl->ijbl", qa, qw).reshape(m, n, nb, 8, 4).sum(-1).astype(f32)  # exact ints
    acc = np.zeros((m, n, 8), f32)
    summs = np.zeros((m, n), f32)
    for b in range(nb):
        dd = (dw[None, :, b] * da[:, None, b]).astype(f32)  # exact: two halves
        acc = _fma(dd[..., None], lanes[:, :, b], acc)
        if qtype == "q4_1":
            summs = (summs + (mw[None, :, b] * sa[:, None, b]).astype(f32)).astype(f32)
    h = (acc[..., 4:] + acc[..., :4]).astype(f32)
    h = (h[..., :2] + h[..., 2:]).astype(f32)
    return ((h[..., 0] + h[..., 1]).astype(f32) + summs).astype(f32)


def spec_q4_0_repacked(x, W):
    da, _, qa = _acts(x, "q8_0")
    dw, _, qw = _weights(W, "q4_0")
    isum = np.einsum("ibl,jbl->ijb", qa, qw).astype(f32)
    acc = np.zeros((x.shape[0], W.shape[0]), f32)
    for b in range(W.shape[1] // 32):
        acc = _fma((dw[None, :, b] * da[:, None, b]).astype(f32), isum[:, :, b], acc)
    return acc


CASES = [(1, 24, 96), (3, 40, 160), (9, 16, 64), (37, 24, 128)]  # (m, n, k); q4_0 rows % 8 == 0: repacked


@pytest.mark.parametrize("qtype", ["q4_0", "q4_1", "q8_0"])
@pytest.mark.parametrize("m,n,k", CASES)
def test_matches_ggml_spec(qtype, m, n, k):
    rng = np.random.default_rng(m * 1000 + n)
    W = lowbit.quantize((rng.standard_normal((n, k)) * 0.05).astype(f32), qtype)
    x = rng.standard_normal((m, k)).astype(f32)
    want = spec_q4_0_repacked(x, W) if qtype == "q4_0" else spec_vec_dot(x, W, qtype)
    for isa in ISAS:
        for threads in (1, 2, 3):
            got = _core.matmul(x, W.data, qtype, n, k, threads, isa)
            np.testing.assert_array_equal(got, want, err_msg=f"{qtype} {isa} {threads} threads m={m}")


@pytest.mark.parametrize("m", [1, 4])
def test_q4_0_rows_not_a_multiple_of_8_follow_vec_dot(m):
    # llama.cpp leaves such q4_0 matrices unpacked: ggml_vec_dot_q4_0_q8_0's 8-lane order
    rng = np.random.default_rng(m)
    W = lowbit.quantize((rng.standard_normal((13, 96)) * 0.05).astype(f32), "q4_0")
    x = rng.standard_normal((m, 96)).astype(f32)
    for isa in ISAS:
        np.testing.assert_array_equal(_core.matmul(x, W.data, "q4_0", 13, 96, 2, isa), spec_vec_dot(x, W, "q4_0"))


@pytest.mark.oracle
@pytest.mark.parametrize("qtype", ["q4_1", "q8_0"])
def test_bit_identical_to_ggml_mul_mat(qtype):
    ggml_matmul = pytest.importorskip("ggml_matmul")
    if not ggml_matmul.available():
        pytest.skip("llama-cpp-python's libggml not found")
    for m, n, k in ((1, 37, 576), (5, 64, 1536), (64, 40, 576)):
        rng = np.random.default_rng(m + n)
        W = lowbit.quantize((rng.standard_normal((n, k)) * 0.02).astype(f32), qtype)
        x = rng.standard_normal((m, k)).astype(f32)
        g = ggml_matmul.GgmlMatmul(lowbit.type_info(qtype)["gguf_id"], W.data.reshape(n, -1), n, k, m, 2)
        try:
            want = g(x)
        finally:
            g.close()
        np.testing.assert_array_equal(lowbit.matmul(x, W, threads=2), want, err_msg=f"{qtype} m={m}")
