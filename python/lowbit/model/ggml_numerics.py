"""ggml's CPU transcendental functions, reproduced in numpy so the forward pass rounds like llama.cpp.

A 135M-parameter model run for 30 layers with int8-quantized activations amplifies one-ulp differences
(an activation that rounds to a neighbouring int8, a probability that rounds to a neighbouring f16), so
matching llama.cpp's logits closely needs its exp, not just any correctly rounded one. ggml's vector
exp (ggml-cpu/vec.h ggml_v_expf, adapted from Arm's optimized routines) is a degree-5 polynomial with
fused multiply-adds; each fma(a, b, c) here is computed in float64 and rounded once to float32, which is
exact for a*b (two 24-bit significands fit in 53 bits) and rounds twice only in vanishingly rare
halfway cases.
"""

from __future__ import annotations

import numpy as np

_F = np.float32


def _H(hex_literal: str) -> np.float32:
    """A C hex float literal (0x1.715476p+0f) as float32."""
    return np.float32(float.fromhex(hex_literal))


def _fma(a, b, c):
    return (a.astype(np.float64) * b + c).astype(np.float32)


def expf(x: np.ndarray, avx512: bool = True) -> np.ndarray:
    """ggml_v_expf (float32 in, float32 out). avx512 picks the AVX-512 variant (exponent applied with
    scalef after adding 1) or the AVX2 one (k*j + k): they differ in the last bit for some inputs."""
    x = np.asarray(x, dtype=np.float32)
    r = _H("0x1.8p23")
    z = _fma(x, np.float64(_H("0x1.715476p+0")), np.float64(r))
    n = (z - r).astype(np.float32)
    b = _fma(-n, np.float64(_H("0x1.62e4p-1")), x.astype(np.float64))
    b = _fma(-n, np.float64(_H("0x1.7f7d1cp-20")), b.astype(np.float64))
    u = (b * b).astype(np.float32)
    p1 = _fma(b, np.float64(_H("0x1.0e4020p-7")), np.float64(_H("0x1.573e2ep-5")))
    p2 = _fma(b, np.float64(_H("0x1.555e66p-3")), np.float64(_H("0x1.fffdb6p-2")))
    inner = _fma(p1, u.astype(np.float64), p2.astype(np.float64))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if avx512:
            tail = _fma(b, np.float64(_H("0x1.ffffecp-1")), np.float64(1.0))
            j = _fma(inner, u.astype(np.float64), tail.astype(np.float64))
            res = np.ldexp(j, n.astype(np.int32)).astype(np.float32)
            big = np.abs(n) > 192
        else:
            tail = (b * _H("0x1.ffffecp-1")).astype(np.float32)
            j = _fma(inner, u.astype(np.float64), tail.astype(np.float64))
            k = np.ldexp(np.float32(1.0), n.astype(np.int32)).astype(np.float32)
            res = _fma(k, j.astype(np.float64), k.astype(np.float64))
            big = np.abs(n) > 126  # the rare-range branch: fall back to the exact value there
            if big.any():
                res = np.where(big, np.exp(x.astype(np.float64)).astype(np.float32), res)
                big = np.abs(n) > 192
        if big.any():
            res = np.where(big, np.where(n <= 0, _F(0.0), _F(np.inf)), res)
    return res.astype(np.float32)


def silu(x: np.ndarray, avx512: bool = True) -> np.ndarray:
    """ggml_v_silu: x / (1 + expf(-x)) with ggml's exp."""
    x = np.asarray(x, dtype=np.float32)
    return (x / (_F(1.0) + expf(-x, avx512))).astype(np.float32)


def reduce_add_16(v: np.ndarray) -> np.ndarray:
    """Sum the last axis (16 lanes) in the tree order of _mm512_reduce_add_ps, in float32."""
    t = v[..., 8:] + v[..., :8]
    t = t[..., 4:] + t[..., :4]
    t = t[..., :2] + t[..., 2:]
    return t[..., 0] + t[..., 1]


def softmax(scores: np.ndarray, avx512: bool = True) -> np.ndarray:
    """ggml_soft_max over the last axis: e = expf(s - max); sum of 16-lane chunks (tree-reduced in
    float32) accumulated in float64 in order; then e * (float)(1/sum)."""
    mx = scores.max(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        e = expf(scores - mx, avx512)
    n = e.shape[-1]
    pad = (-n) % 16
    ep = np.concatenate([e, np.zeros(e.shape[:-1] + (pad,), np.float32)], axis=-1) if pad else e
    chunks = reduce_add_16(ep.reshape(ep.shape[:-1] + (-1, 16))).astype(np.float64)
    total = np.cumsum(chunks, axis=-1)[..., -1:]
    return e * (1.0 / total).astype(np.float32)
