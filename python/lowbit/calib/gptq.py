"""GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
Transformers"), written to be read next to the paper's Algorithm 1.

Given a layer W (n, k) and the Hessian H = 2/N sum x x^T of its inputs (k, k), quantize W column by
column; after each column, spread its rounding error over the not-yet-quantized columns so that the
layer's output error ||(W - Q) X||^2 stays small. The update uses the upper Cholesky factor U of the
damped inverse Hessian (H + damp*I)^-1 = U^T U: quantizing column i with error e moves the remaining
columns by -e / U[i,i] * U[i, i+1:]. Updates inside a block of 128 columns are applied at once
("lazy batch" updates), group parameters are fitted on the error-updated weights when a group starts,
and act-order processes columns by decreasing Hessian diagonal.

`gptq_into_gguf` is the same idea with a GGUF block type as the grid: a whole block of 32 or 256
columns is quantized at once by lowbit.quantize (so K-quants' super-block scales work unchanged), and
the block's error is propagated to the remaining columns through the same Cholesky factor.
"""

from __future__ import annotations

import logging

import numpy as np

from .. import ops
from .grid import GridSpec, QuantizedLinear, check_group, fit, quantize

log = logging.getLogger(__name__)


def inverse_hessian_cholesky(H: np.ndarray, damp: float = 0.01) -> tuple[np.ndarray, float]:
    """Upper Cholesky factor U of (H + damp * mean(diag H) * I)^-1, and the dampening used.

    A Hessian that is not positive definite even after dampening (too few samples, NaN activations)
    gets 10x more dampening until it is, with a warning; NaN/inf in H is an error."""
    if not np.all(np.isfinite(H)):
        raise ValueError("[gptq] the Hessian has NaN or inf entries (non-finite activations)")
    H = H.astype(np.float64, copy=True)
    k = H.shape[0]
    mean_diag = float(np.mean(np.diag(H))) or 1.0
    for attempt in range(6):
        d = damp * (10 ** attempt)
        try:
            L = np.linalg.cholesky(H + d * mean_diag * np.eye(k))
            Linv = np.linalg.inv(L)                  # H^-1 = L^-T L^-1
            Hinv = Linv.T @ Linv
            U = np.linalg.cholesky(Hinv).T           # Hinv = U^T U, U upper
            if attempt:
                log.warning("[gptq] Hessian not positive definite at damp %.3g; used damp %.3g", damp, d)
            return U, d
        except np.linalg.LinAlgError:
            continue
    raise ValueError(f"[gptq] the Hessian is not positive definite even with damp {d}")


def _dead_columns(H: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns whose input is always zero carry no information: fix H[i,i] = 1 and W[:, i] = 0 (as the
    reference implementation does) so the Cholesky exists."""
    dead = np.diag(H) == 0
    if dead.any():
        H = H.copy()
        H[dead, dead] = 1.0
        W = W.copy()
        W[:, dead] = 0.0
    return H, W


def gptq(W: np.ndarray, H: np.ndarray, spec: GridSpec, act_order: bool = False, static_groups: bool = True,
         damp: float = 0.01, block_size: int = 128) -> QuantizedLinear:
    """W: (n, k) f32 weights, H: (k, k) Hessian of the layer inputs -> the quantized layer.

    act_order: quantize columns in order of decreasing H[i,i]. static_groups: with act_order, fit every
    group's parameters on the original weights before any update, so each column keeps its natural
    group and g_idx stays monotonic (exllama/vLLM kernels and GGUF need that); without it, a group's
    parameters come from the columns quantized together in act order and g_idx is permuted."""
    n, k = W.shape
    check_group(spec, k)
    if H.shape != (k, k):
        raise ValueError(f"[gptq] Hessian shape {H.shape} does not match the layer's k={k}")
    width = spec.width(k)
    if spec.group_size != -1 and block_size % width:
        block_size = width  # a group must start inside one lazy block to be fitted on updated weights
    H, W = _dead_columns(H, W.astype(np.float64))

    static = None  # per-group parameters fixed before any update: one per row, or act-order's static groups
    if spec.group_size == -1:
        static = [fit(spec, W)]
    elif act_order and static_groups:
        static = [fit(spec, W[:, g * width:(g + 1) * width]) for g in range(k // width)]
    perm = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(k)
    W, H = W[:, perm], H[np.ix_(perm, perm)]
    U, _ = inverse_hessian_cholesky(H, damp)

    ng = spec.groups(k)
    Q = np.zeros((n, k), np.uint8)
    scales = np.zeros((n, ng), np.float32)
    zeros = np.zeros((n, ng), np.float32)
    g_idx = np.zeros(k, np.int32)  # group of each column, in the permuted order for now
    cur = None
    n_dynamic = 0
    for i1 in range(0, k, block_size):
        i2 = min(i1 + block_size, k)
        W1 = W[:, i1:i2].copy()
        Err1 = np.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            if static is not None:
                g = int(perm[col]) // width   # 0 for one group per row (width = k)
                cur = static[g]
            elif col % width == 0:
                # the group's parameters from the weights as updated by all earlier columns
                g = n_dynamic
                cur = fit(spec, W1[:, i:i + width].astype(np.float32))
                n_dynamic += 1
            scales[:, g], zeros[:, g] = cur
            g_idx[col] = g
            w = W1[:, i]
            q, wq = quantize(spec, w[:, None].astype(np.float32), cur[0], cur[1])
            Q[:, col] = q[:, 0]
            err = (w - wq[:, 0]) / U1[i, i]
            W1[:, i + 1:] -= np.outer(err, U1[i, i + 1:])
            Err1[:, i] = err
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]

    inv = np.argsort(perm)
    return QuantizedLinear(spec, Q[:, inv], scales, zeros, g_idx[inv].astype(np.int32))


def hessian_error(W: np.ndarray, Wq: np.ndarray, H: np.ndarray) -> float:
    """tr((W - Wq) H (W - Wq)^T): the layer's output error on the calibration inputs (H = 2/N X^T X)."""
    E = (W.astype(np.float64) - Wq.astype(np.float64))
    return float(np.einsum("ij,jk,ik->", E, H, E))


def gptq_into_gguf(W: np.ndarray, H: np.ndarray, qtype: str, damp: float = 0.01, imatrix: bool = True,
                   threads: int | None = None) -> ops.QuantizedTensor:
    """Error-compensated quantization straight into a GGUF block type (any type lowbit.quantize has).

    Blocks of the type's block size are quantized left to right by lowbit.quantize (with diag(H) as the
    importance when imatrix=True, for the types that use one); each block's error E is then pushed onto
    the remaining columns: W[:, rest] -= E U_bb^-1 U[b, rest], the joint form of GPTQ's per-column step.
    Returns the GGUF tensor (bytes a llama.cpp build reads as is)."""
    n, k = W.shape
    bs = ops.type_info(qtype)["block_size"]
    if k % bs:
        raise ValueError(f"[gptq] k={k} is not a multiple of {qtype}'s block size {bs}")
    H, W = _dead_columns(H, W.astype(np.float64))
    U, _ = inverse_hessian_cholesky(H, damp)
    importance = np.diag(H).astype(np.float32)
    out = np.empty((n, k // bs * ops.type_info(qtype)["type_size"]), np.uint8)
    row_bytes = ops.type_info(qtype)["type_size"]
    for b in range(k // bs):
        j1, j2 = b * bs, (b + 1) * bs
        blk = np.ascontiguousarray(W[:, j1:j2], dtype=np.float32)
        qt = ops.quantize(blk, qtype, importance[j1:j2] if imatrix else None, threads=threads)
        out[:, b * row_bytes:(b + 1) * row_bytes] = qt.data.reshape(n, row_bytes)
        if j2 < k:
            E = W[:, j1:j2] - qt.dequantize(threads=threads).astype(np.float64)
            # solve Err U_bb = E (U_bb upper triangular): Err = E U_bb^-1
            Err = np.linalg.solve(U[j1:j2, j1:j2].T, E.T).T
            W[:, j2:] -= Err @ U[j1:j2, j2:]
    return ops.QuantizedTensor(out.reshape(-1), qtype, (n, k))
