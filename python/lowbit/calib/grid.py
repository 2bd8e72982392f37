"""Integer group grids: the (scale, zero) parameters of one group of weights and rounding onto them.

A group of `group_size` input columns of one output row shares one scale and one zero point:
    w ~ scale * (q - zero),  q in [0, 2^bits - 1]
the form GPTQ and AWQ checkpoints store (scale as float16, so the scale is rounded to f16 here: what
is stored is exactly what the algorithm saw). `style` picks whose rule fits the range:
- "gptq" (Frantar et al.'s Quantizer): the range always includes 0; symmetric grids put zero at
  2^(bits-1) and scale = 2 * max|w| / (2^bits - 1);
- "awq" (AutoAWQ's pseudo_quantize_tensor): asymmetric on [min, max] with scale = (max - min) / maxq,
  or, without a zero point, scale = max|w| / (2^(bits-1) - 1) and zero = 2^(bits-1).
Symmetric 4-bit groups of 32 are then byte-for-byte GGUF Q4_0 (d = scale, q - 8), 8-bit ones Q8_0.

The "min" grid is GGUF's Q4_1 / Q5_1 form w ~ d * q + m with d and m both float16, so asymmetric
group-32 results can be written into those types exactly (an integer zero would not survive as m).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F16_TINY = float(np.finfo(np.float16).tiny)


def _f16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).astype(np.float32)


@dataclass(frozen=True)
class GridSpec:
    bits: int
    group_size: int          # -1: one group per row
    sym: bool = True
    style: str = "gptq"      # "gptq" | "awq" | "min"

    @property
    def maxq(self) -> int:
        return (1 << self.bits) - 1

    def groups(self, k: int) -> int:
        return 1 if self.group_size == -1 else k // self.group_size

    def width(self, k: int) -> int:
        return k if self.group_size == -1 else self.group_size


def fit(spec: GridSpec, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w: (rows, g) f32 -> (scale, zero), each (rows,) f32. For the "min" grid `zero` holds m (the f16
    offset), for the others the integer zero point."""
    w = w.astype(np.float32, copy=False)
    maxq = spec.maxq
    if spec.style == "min":
        lo, hi = w.min(axis=1), w.max(axis=1)
        d = _f16((hi - lo) / maxq)
        d = np.where(d > 0, d, np.float32(1.0))
        return d, _f16(lo)
    if spec.style == "awq":
        if spec.sym:
            amax = np.maximum(np.abs(w).max(axis=1), 1e-5)
            scale = np.maximum(_f16(amax / ((maxq + 1) // 2 - 1)), F16_TINY)
            return scale, np.full_like(scale, (maxq + 1) // 2)
        hi, lo = w.max(axis=1), w.min(axis=1)
        scale = np.maximum(_f16(np.maximum(hi - lo, 1e-5) / maxq), F16_TINY)
        zero = np.clip(-np.round(lo / scale), 0, maxq)
        return scale, zero.astype(np.float32)
    lo, hi = np.minimum(w.min(axis=1), 0), np.maximum(w.max(axis=1), 0)
    if spec.sym:
        hi = np.maximum(-lo, hi)
        lo = np.where(lo < 0, -hi, lo)
    empty = (lo == 0) & (hi == 0)
    lo, hi = np.where(empty, -1, lo), np.where(empty, 1, hi)
    scale = np.maximum(_f16((hi - lo) / maxq), F16_TINY)
    if spec.sym:
        zero = np.full_like(scale, (maxq + 1) // 2)
    else:
        # zero >= 1: GPTQ checkpoints store zero - 1 (the "v1" convention every loader adds 1 back to),
        # so a zero of 0 cannot be stored; it only occurs for groups with no negative weight
        zero = np.clip(np.round(-lo / scale), 1, maxq)
    return scale, zero.astype(np.float32)


def quantize(spec: GridSpec, w: np.ndarray, scale: np.ndarray, zero: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w: (rows, c) f32 with per-row scale/zero (rows,) or broadcastable (rows, c) -> (q uint8, dequantized f32).
    Dequantized values are computed the way the loaders compute them: scale * (q - zero) in f32
    (d * q + m for the "min" grid, as ggml's Q4_1 does)."""
    if scale.ndim == 1:
        scale, zero = scale[:, None], zero[:, None]
    if spec.style == "min":
        q = np.clip(np.round((w - zero) / scale), 0, spec.maxq)
        return q.astype(np.uint8), (q * scale + zero).astype(np.float32)
    q = np.clip(np.round(w / scale) + zero, 0, spec.maxq)
    return q.astype(np.uint8), (scale * (q - zero)).astype(np.float32)


@dataclass
class QuantizedLinear:
    """A linear layer on an integer group grid (what GPTQ / AWQ checkpoints hold).

    q: (n, k) uint8 in [0, 2^bits); scales, zeros: (n, groups) f32 (zeros integral, or f16 m for "min");
    g_idx: (k,) int32, the group of each input column (monotonic unless act-order without static groups).
    """
    spec: GridSpec
    q: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray
    g_idx: np.ndarray

    def dequantize(self) -> np.ndarray:
        """(n, k) f32, the exact values every loader of this layer reconstructs."""
        s, z = self.scales[:, self.g_idx], self.zeros[:, self.g_idx]
        if self.spec.style == "min":
            return (self.q * s + z).astype(np.float32)
        return (s * (self.q.astype(np.float32) - z)).astype(np.float32)


def rtn(spec: GridSpec, w: np.ndarray) -> QuantizedLinear:
    """Round-to-nearest on the grid: the baseline. w: (n, k) f32."""
    n, k = w.shape
    check_group(spec, k)
    width = spec.width(k)
    g = w.reshape(n, k // width, width).reshape(-1, width)
    scale, zero = fit(spec, g)
    q, _ = quantize(spec, g, scale, zero)
    ng = k // width
    return QuantizedLinear(spec, q.reshape(n, k), scale.reshape(n, ng), zero.reshape(n, ng),
                           (np.arange(k) // width).astype(np.int32))


def check_group(spec: GridSpec, k: int) -> None:
    if spec.bits not in (2, 3, 4, 5, 8):
        raise ValueError(f"[quantize] bits must be one of 2, 3, 4, 8, got {spec.bits}")
    if spec.group_size != -1 and (spec.group_size <= 0 or k % spec.group_size):
        raise ValueError(f"[quantize] group size {spec.group_size} does not divide the row length {k}")
