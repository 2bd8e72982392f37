"""GPTQ / AWQ group-quantized weights: `GroupQuantizedTensor`, what lowbit runs those checkpoints on.

A linear (n_out, k) on an integer grid q in [0, 2^bits) with one scale and one zero point per (output
row, group of input columns): w[o, i] = (q[o, i] - zeros[o, g]) * scales[o, g], g = g_idx[i]. GPTQ stores
g_idx (act-order puts any column in any group; without it g = i // group_size, the last group partial
when group_size does not divide k); AWQ's groups are always i // group_size.

Why a class of its own and not rows of the GGUF type table: the table's rows are fixed block formats
(a block size, a byte layout, a GGUF id) that the GGUF files name; these formats have a per-checkpoint
group size and column-to-group map, and no GGUF id. The kernels live beside the table's
(csrc/core/group_quant.h, csrc/ref/group.cpp, csrc/cpu/avx2/group.cpp) with the same ISA dispatch, and
`lowbit.matmul` / `lowbit.dequantize` accept both kinds of tensor.

The checkpoint's tensors are repacked once, here, into the kernels' layout: columns reordered so each
group's are contiguous, each group padded with zero codes to whole chunks of 32 columns, 4-bit codes as
packed nibbles (16 bytes per chunk), 2/3/8-bit as one byte each; scales and zeros (n, G) float32.
"""

from __future__ import annotations

import numpy as np

from . import _core
from .ops import _check_isa, _check_threads, _host_matmul_input

CHUNK = 32
BITS = (2, 3, 4, 8)


class GroupQuantizedTensor:
    """Group-quantized weights (n, k) in the kernels' layout; build one with `from_grid`.

    bits; group_size (the checkpoint's, -1 = one group per row; informational: g_idx decides);
    codes (n, row_bytes) uint8; scales, zeros (n, G) float32; chunk_start (G + 1,) int32 (group g holds
    padded chunks chunk_start[g]..chunk_start[g+1]); xsrc (kp,) int32 (the source column of each padded
    column, -1 for padding).
    """

    __slots__ = ("bits", "chunk_start", "codes", "group_size", "scales", "shape", "xsrc", "zeros")

    def __init__(self, bits, group_size, shape, codes, scales, zeros, chunk_start, xsrc):
        self.bits, self.group_size, self.shape = int(bits), int(group_size), (int(shape[0]), int(shape[1]))
        self.codes, self.scales, self.zeros, self.chunk_start, self.xsrc = codes, scales, zeros, chunk_start, xsrc

    @classmethod
    def from_grid(cls, q: np.ndarray, scales: np.ndarray, zeros: np.ndarray, g_idx: np.ndarray | None, bits: int,
                  group_size: int = -1) -> GroupQuantizedTensor:
        """q: (n, k) integer codes < 2^bits; scales, zeros: (n, G) float (zeros as the dequantization uses
        them: GPTQ v1's stored zero + 1, AWQ's as stored); g_idx: (k,) int in [0, G), or None for
        i // group_size (group_size -1: G = 1)."""
        op = "GroupQuantizedTensor"
        if bits not in BITS:
            raise ValueError(f"[{op}] bits must be one of {BITS}, got {bits}")
        q, scales, zeros = np.asarray(q), np.asarray(scales), np.asarray(zeros)
        if q.ndim != 2 or q.shape[0] < 1 or q.shape[1] < 1:
            raise ValueError(f"[{op}] q must be 2-D (n, k) and non-empty, got shape {q.shape}")
        if q.dtype.kind not in "ui":
            raise TypeError(f"[{op}] q must hold integers, got {q.dtype}")
        n, k = q.shape
        if scales.ndim != 2 or scales.shape[0] != n or scales.shape[1] < 1 or zeros.shape != scales.shape:
            raise ValueError(f"[{op}] scales and zeros must both be (n={n}, groups), got {scales.shape} and {zeros.shape}")
        G = scales.shape[1]
        if g_idx is None:
            width = k if group_size == -1 else group_size
            if width <= 0:
                raise ValueError(f"[{op}] group_size must be -1 or >= 1, got {group_size}")
            g_idx = np.arange(k) // width
        g_idx = np.asarray(g_idx)
        if g_idx.shape != (k,) or g_idx.dtype.kind not in "ui":
            raise ValueError(f"[{op}] g_idx must be ({k},) integers, got {g_idx.shape} {g_idx.dtype}")
        if k and (g_idx.min() < 0 or g_idx.max() >= G):
            raise ValueError(f"[{op}] g_idx must lie in [0, {G}) (one group per column of scales), "
                             f"got [{g_idx.min()}, {g_idx.max()}]")
        if q.size and (q.min() < 0 or q.max() >= 1 << bits):
            raise ValueError(f"[{op}] codes must lie in [0, {1 << bits}) for {bits}-bit, got [{q.min()}, {q.max()}]")
        # columns sorted by group (stable: in-group order kept), each group padded to whole chunks
        order = np.argsort(g_idx, kind="stable")
        counts = np.bincount(g_idx, minlength=G)
        chunks = (counts + CHUNK - 1) // CHUNK
        chunk_start = np.zeros(G + 1, np.int64)
        np.cumsum(chunks, out=chunk_start[1:])
        kp = int(chunk_start[-1]) * CHUNK
        first = np.zeros(G, np.int64)  # first sorted position of each group
        np.cumsum(counts[:-1], out=first[1:])
        g_sorted = g_idx[order]
        dest = CHUNK * chunk_start[g_sorted] + (np.arange(k) - first[g_sorted])
        xsrc = np.full(kp, -1, np.int32)
        xsrc[dest] = order
        if kp == k and np.array_equal(xsrc, np.arange(k)):  # plain groups of a multiple of 32: no gather
            padded = np.ascontiguousarray(q, np.uint8)
        else:
            padded = np.zeros((n, kp), np.uint8)
            padded[:, dest] = q[:, order]
        if bits == 4:  # per chunk: byte j = column j | column j + 16 << 4
            c = padded.reshape(n, kp // CHUNK, CHUNK)
            codes = (c[..., :16] | (c[..., 16:] << 4)).reshape(n, kp // 2)
        else:
            codes = padded
        return cls(bits, group_size, (n, k), np.ascontiguousarray(codes),
                   np.ascontiguousarray(scales, np.float32), np.ascontiguousarray(zeros, np.float32),
                   chunk_start.astype(np.int32), xsrc)

    @property
    def groups(self) -> int:
        return int(self.scales.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.scales.nbytes + self.zeros.nbytes + self.xsrc.nbytes)

    @property
    def bits_per_weight(self) -> float:
        """Of the checkpoint's format (codes plus an f16 scale and a packed zero per group), not of
        this in-memory layout."""
        return self.bits + self.groups * (16 + self.bits) / self.shape[1]

    @property
    def device(self) -> str:
        return "cpu"

    def to(self, device):
        """'cpu' -> self; 'cuda' / 'cuda:N' -> a lowbit.cuda.CudaGroupTensor (4-bit only: ValueError for
        other widths; RuntimeError without a CUDA build or a usable GPU)."""
        from . import cuda
        kind, index = cuda.parse_device("to", device)
        return self if kind == "cpu" else cuda.group_to_device(self, index)

    def _args(self):
        return (self.codes, self.scales, self.zeros, self.chunk_start, self.xsrc, self.bits, *self.shape)

    def dequantize(self, threads: int | None = None, isa: str | None = None) -> np.ndarray:
        """(n, k) float32: (q - zero) * scale, exactly as numpy computes it in float32."""
        op = "dequantize"
        return _core.group_dequantize(*self._args(), _check_threads(op, threads), _check_isa(op, isa))

    def __repr__(self) -> str:
        return (f"GroupQuantizedTensor(bits={self.bits}, group_size={self.group_size}, shape={self.shape}, "
                f"groups={self.groups})")


def group_matmul(x, w: GroupQuantizedTensor, threads=None, isa=None) -> np.ndarray:
    """lowbit.matmul for a GroupQuantizedTensor: y = x @ dequantize(W).T with float32 activations and
    float32 sums (no activation quantization). x: float32/float16 (..., k) -> float32 (..., n)."""
    op = "matmul"
    n = w.shape[0]
    x2 = _host_matmul_input(op, x, w.shape)
    if x2.dtype == np.float16:
        x2 = x2.astype(np.float32)
    y = _core.group_matmul(x2, *w._args(), _check_threads(op, threads), _check_isa(op, isa))
    return y.reshape(x.shape[:-1] + (n,))
