"""Packing integer group grids into the layouts GPTQ and AWQ checkpoints use, and back.

GPTQ (AutoGPTQ / GPTQModel "gptq" checkpoint format, as transformers, optimum and vLLM load it),
for a linear with n outputs, k inputs, b bits, G groups:
    qweight (k*b/32, n) int32   the (k, n) integer grid packed along k: each run of 32 values of one
                                column is one little-endian bit stream of b*32 bits = b words
                                (for b = 2, 4, 8 simply value j at bits b*j of word j*b/32; 3-bit values
                                straddle words exactly as AutoGPTQ's pack loop puts them)
    qzeros  (G, n*b/32) int32   zero points minus one ("v1": loaders add 1 back), packed along n the same way
    scales  (G, n) float16
    g_idx   (k,) int32          group of each input column
    dequantized w[o, i] = scales[g, o] * (q[i, o] - (stored_zero[g, o] + 1)),  g = g_idx[i]

AWQ (AutoAWQ "gemm" version, loaded by transformers and vLLM), 4-bit only:
    qweight (k, n/8) int32      each word holds 8 consecutive outputs of one input, in the nibble order
                                0, 2, 4, 6, 1, 3, 5, 7 (output 8c + ORDER[j] at bits 4j of word c)
    qzeros  (G, n/8) int32      zero points as they are (no offset), same order
    scales  (G, n) float16
    dequantized w[o, i] = scales[g, o] * (q[i, o] - zero[g, o]),  g = i // group_size
"""

from __future__ import annotations

import numpy as np

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


def _run(bits: int) -> tuple[int, int]:
    """(values, words) of one bit stream: 32/bits values in one word, or 32 values in 3 words for 3 bits."""
    return (32 // bits, 1) if 32 % bits == 0 else (32, bits)


def pack_bits(v: np.ndarray, bits: int) -> np.ndarray:
    """v: (R, m) unsigned values < 2^bits -> (R, m*bits/32) int32: each run of values one little-endian
    bit stream (m a multiple of 32/bits, or of 32 for 3 bits)."""
    R, m = v.shape
    per, nw = _run(bits)
    if m % per:
        raise ValueError(f"[pack] {m} values per row is not a multiple of {per} ({bits}-bit)")
    v = v.reshape(R, m // per, per).astype(np.uint64)
    out = np.zeros((R, m // per, nw), np.uint64)
    for t in range(per):
        word, shift = divmod(t * bits, 32)
        out[..., word] |= (v[..., t] << np.uint64(shift)) & np.uint64(0xFFFFFFFF)
        if shift + bits > 32:
            out[..., word + 1] |= v[..., t] >> np.uint64(32 - shift)
    return out.astype(np.uint32).reshape(R, m // per * nw).view(np.int32)


def unpack_bits(words: np.ndarray, bits: int) -> np.ndarray:
    """The inverse of pack_bits: (R, w) int32 -> (R, w*32/bits) uint8."""
    R, w = words.shape
    per, nw = _run(bits)
    if w % nw:
        raise ValueError(f"[unpack] {w} words per row is not a multiple of {nw} ({bits}-bit)")
    u = np.ascontiguousarray(words).view(np.uint32).reshape(R, w // nw, nw).astype(np.uint64)
    mask = np.uint64((1 << bits) - 1)
    out = np.zeros((R, w // nw, per), np.uint8)
    for t in range(per):
        word, shift = divmod(t * bits, 32)
        val = u[..., word] >> np.uint64(shift)
        if shift + bits > 32:
            val |= u[..., word + 1] << np.uint64(32 - shift)
        out[..., t] = (val & mask).astype(np.uint8)
    return out.reshape(R, w // nw * per)


def pack_gptq(q: np.ndarray, scales: np.ndarray, zeros: np.ndarray, g_idx: np.ndarray, bits: int) -> dict:
    """q: (n, k) grid values; scales, zeros: (n, G); g_idx: (k,) -> the four GPTQ tensors."""
    if bits not in (2, 3, 4, 8):
        raise ValueError(f"[pack_gptq] bits must be 2, 3, 4 or 8, got {bits}")
    zeros = np.asarray(zeros)
    if np.any(zeros < 1) or np.any(zeros > (1 << bits) - 1) or np.any(zeros != np.round(zeros)):
        raise ValueError("[pack_gptq] zero points must be integers in [1, 2^bits): the v1 format stores zero - 1")
    return {
        "qweight": np.ascontiguousarray(pack_bits(q, bits).T),                          # (k*b/32, n)
        "qzeros": pack_bits((zeros.T - 1).astype(np.uint8), bits),                      # (G, n*b/32)
        "scales": np.ascontiguousarray(scales.T).astype(np.float16),                    # (G, n)
        "g_idx": np.asarray(g_idx, np.int32),
    }


def unpack_gptq(qweight: np.ndarray, qzeros: np.ndarray, scales: np.ndarray, g_idx: np.ndarray, bits: int):
    """-> (q (n, k) uint8, zeros (n, G) f32 with the +1 of v1 applied, scales (n, G) f32, g_idx (k,))."""
    q = unpack_bits(np.ascontiguousarray(qweight.T), bits)
    z = unpack_bits(qzeros, bits).astype(np.float32) + 1
    return q, np.ascontiguousarray(z.T), np.ascontiguousarray(scales.astype(np.float32).T), g_idx.astype(np.int32)


def pack_awq(q: np.ndarray, scales: np.ndarray, zeros: np.ndarray) -> dict:
    """q: (n, k) 4-bit grid values; scales, zeros: (n, G) -> the three AWQ GEMM tensors."""
    n, k = q.shape
    if n % 8:
        raise ValueError(f"[pack_awq] output size {n} is not a multiple of 8")

    def pack(v):  # v: (R, n) -> (R, n/8)
        v = v.reshape(v.shape[0], n // 8, 8).astype(np.uint32)
        out = np.zeros(v.shape[:2], np.uint32)
        for j, src in enumerate(AWQ_ORDER):
            out |= v[..., src] << np.uint32(4 * j)
        return out.view(np.int32)

    return {"qweight": pack(np.ascontiguousarray(q.T)), "qzeros": pack(np.ascontiguousarray(zeros.T).astype(np.uint8)),
            "scales": np.ascontiguousarray(scales.T).astype(np.float16)}


def unpack_awq(qweight: np.ndarray, qzeros: np.ndarray, scales: np.ndarray):
    """-> (q (n, k) uint8, zeros (n, G) f32, scales (n, G) f32)."""
    def unpack(w):  # (R, n/8) -> (R, n)
        u = w.view(np.uint32)
        out = np.zeros(u.shape + (8,), np.uint8)
        for j, dst in enumerate(AWQ_ORDER):
            out[..., dst] = (u >> np.uint32(4 * j)) & 0xF
        return out.reshape(u.shape[0], -1)
    return (np.ascontiguousarray(unpack(qweight).T), np.ascontiguousarray(unpack(qzeros).T.astype(np.float32)),
            np.ascontiguousarray(scales.astype(np.float32).T))


def dequantize_grid(q: np.ndarray, zeros: np.ndarray, scales: np.ndarray, g_idx: np.ndarray) -> np.ndarray:
    """(n, k) f32: scales[:, g] * (q - zeros[:, g]) with g = g_idx of each column."""
    return (scales[:, g_idx] * (q.astype(np.float32) - zeros[:, g_idx])).astype(np.float32)
