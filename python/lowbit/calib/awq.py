"""AWQ (Lin et al. 2023, "AWQ: Activation-aware Weight Quantization"), following AutoAWQ's search.

Per block, with the block's calibration inputs:
1. scale search: for each group of linears that read one input (attention norm -> q/k/v; v -> o when
   every query head has its own KV head; post-attention norm -> gate/up; up -> down), try 20 ratios
   r in [0, 1): s = mean|x|^r / mean|w|^(1-r) (normalized so sqrt(max s * min s) = 1), quantize W*s and
   divide by s again, and keep the s with the smallest output error of the sub-layer the group feeds
   (the attention sub-layer, the o projection, the feed-forward, the down projection);
2. the scales are folded in: the norm's weight (or the preceding linear's rows) divided by s, the
   linears' input columns multiplied by s, so the float model computes the same function;
3. clipping search: for every linear except q and k, per output row and group, shrink the clip range
   max|w| by 0..45% in steps of 5% and keep the one with the smallest error of that group's partial
   dot products on (a sample of) the inputs;
4. round-to-nearest on the group grid.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..model import llama
from .block import FloatLayer, attention_part, block_forward, ffn_part
from .grid import GridSpec, check_group, fit, quantize, rtn
from .sequential import CalibratedModel, Progress, calibrate_sequential, run_blocks

N_GRID = 20
MAX_SHRINK = 0.5
CLIP_TOKENS = 512      # AutoAWQ's n_sample_token for the clipping search


def fake_quantize(spec: GridSpec, w: np.ndarray) -> np.ndarray:
    """Round-to-nearest and back to float (what the searches score). w: (n, k)."""
    n, k = w.shape
    width = spec.width(k)
    g = w.reshape(-1, width)
    scale, zero = fit(spec, g)
    return quantize(spec, g, scale, zero)[1].reshape(n, k)


def _w_mean(spec: GridSpec, ws: list[np.ndarray]) -> np.ndarray:
    """Mean over output rows of |w| / max|w| within each group: how large each input column's weights
    are relative to their group (k,)."""
    w = np.concatenate(ws, axis=0)
    n, k = w.shape
    width = spec.width(k)
    g = np.abs(w).reshape(n, k // width, width)
    g = g / np.maximum(g.max(axis=2, keepdims=True), 1e-12)
    return g.reshape(n, k).mean(axis=0)


def search_scale(spec: GridSpec, x_mean: np.ndarray, names: list[str], lw: FloatLayer,
                 run, reference: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The 20-point grid search. run(layer) -> sub-layer output on the search inputs.
    Returns (scales (k,), best ratio, best loss)."""
    w_mean = _w_mean(spec, [getattr(lw, n) for n in names])
    best = (np.ones_like(x_mean), -1.0, np.inf)
    for step in range(N_GRID):
        r = step / N_GRID
        s = np.maximum(x_mean ** r / (w_mean ** (1 - r) + 1e-4), 1e-4)
        s = (s / np.sqrt(s.max() * s.min())).astype(np.float32)
        trial = lw.copy()
        for n in names:
            setattr(trial, n, fake_quantize(spec, getattr(lw, n) * s) / s)
        loss = float(np.mean((run(trial) - reference) ** 2))
        if loss < best[2]:
            best = (s, r, loss)
    return best


def search_clip(spec: GridSpec, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per (row, group) clip value max|w| * (1 - i/20), i < 10, minimizing the mean squared error of
    the group's partial dot products x_g . w_g over the sampled tokens. w: (n, k); x: (N, k), the
    clip_inputs subsample.
    Returns the clipped weights."""
    n, k = w.shape
    width = spec.width(k)
    ng = k // width
    xg = np.ascontiguousarray(x.reshape(x.shape[0], ng, width).transpose(1, 0, 2))   # (ng, N, gs)
    wg = w.reshape(n, ng, width)                                                     # (n, ng, gs)

    def partial_dots(v):  # (n, ng, gs) -> (ng, N, n), one BLAS matmul per group
        return xg @ v.transpose(1, 2, 0)

    ref = partial_dots(wg)
    amax = np.abs(wg).max(axis=2, keepdims=True)                                     # (n, ng, 1)
    best_err = np.full((n, ng), np.inf)
    best_max = amax.copy()
    for i in range(int(MAX_SHRINK * N_GRID)):
        m = amax * np.float32(1 - i / N_GRID)
        qw = fake_quantize(spec, np.clip(wg, -m, m).reshape(n, k)).reshape(n, ng, width)
        err = np.mean((partial_dots(qw) - ref) ** 2, axis=1).T                        # (n, ng)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_max = np.where(better[..., None], m, best_max)
    return np.clip(wg, -best_max, best_max).reshape(n, k)


def input_statistics(cfg: llama.Config, lw: FloatLayer, X: np.ndarray, cos, sin) -> tuple[dict, dict]:
    """What AutoAWQ takes from all calibration tokens, for every linear's input: mean |x| per input column
    (the scale search's x_mean) and the clip search's tokens, every (N // CLIP_TOKENS)-th of the N tokens
    (its n_sample_token subsample). Collected batch by batch, so only the subsample is held."""
    sums: dict[str, np.ndarray] = {}
    picked: dict[str, list] = {}
    seen: dict[str, int] = {}
    n_tokens = X.shape[0] * X.shape[1]
    step = max(1, n_tokens // CLIP_TOKENS)

    def hook(name: str, a: np.ndarray) -> None:
        a = a.reshape(-1, a.shape[-1])
        s = np.abs(a).sum(axis=0, dtype=np.float64)
        sums[name] = sums[name] + s if name in sums else s
        first = seen.get(name, 0)
        picked.setdefault(name, []).append(np.array(a[(-first) % step::step], np.float32))
        seen[name] = first + len(a)

    run_blocks(cfg, lw, X, cos, sin, hook)
    x_mean = {k: (v / n_tokens).astype(np.float32) for k, v in sums.items()}
    return x_mean, {k: np.concatenate(v) for k, v in picked.items()}


def awq_block(cfg: llama.Config, spec: GridSpec, lw: FloatLayer, X: np.ndarray, cos, sin,
              search_samples: int, gguf_type: str | None = None) -> tuple[dict, FloatLayer, dict]:
    """AWQ on one block: X (S, T, d) block inputs. Returns (quantized linears, the scaled float layer with
    quantized linears, search log)."""
    x_mean, clip_x = input_statistics(cfg, lw, X, cos, sin)
    # the inputs of every linear on the samples the scale search scores: (S, T, k) each
    A: dict[str, np.ndarray] = {}
    block_forward(cfg, lw, X[:search_samples], cos, sin, lambda name, a: A.__setitem__(name, np.array(a, np.float32)))

    def attn_run(layer):
        return attention_part(cfg, layer, A["attn_in"], cos, sin)

    def o_run(layer):
        return A["attn_out"] @ layer.wo.T

    def ffn_run(layer):
        return ffn_part(layer, A["ffn_in"])

    def down_run(layer):
        return A["down_in"] @ layer.w_down.T

    groups = [("attn_norm", ["wq", "wk", "wv"], "attn_in", attn_run)]
    if cfg.n_head == cfg.n_head_kv:  # v's output rows feed o's input columns one to one
        groups.append(("wv", ["wo"], "attn_out", o_run))
    groups += [("ffn_norm", ["w_gate", "w_up"], "ffn_in", ffn_run), ("w_up", ["w_down"], "down_in", down_run)]

    found, log = [], {}
    for prev, names, inp, run in groups:
        s, ratio, loss = search_scale(spec, x_mean[inp], names, lw, run, run(lw))
        found.append((prev, names, inp, s))
        log[f"{prev}->{'/'.join(names)}"] = {"ratio": ratio, "loss": loss}

    # fold every scale in at once (all were searched on the unscaled block, as AutoAWQ does)
    out = lw.copy()
    for prev, names, inp, s in found:
        if prev.endswith("norm"):
            setattr(out, prev, getattr(out, prev) / s)
        else:
            setattr(out, prev, getattr(out, prev) / s[:, None])
            if prev == "wv" and out.bv is not None:
                out.bv = out.bv / s
        for n in names:
            setattr(out, n, getattr(out, n) * s)
        clip_x[inp] = clip_x[inp] / s

    qs = {}
    for name, inp in (("wq", "attn_in"), ("wk", "attn_in"), ("wv", "attn_in"), ("wo", "attn_out"),
                      ("w_gate", "ffn_in"), ("w_up", "ffn_in"), ("w_down", "down_in")):
        w = getattr(out, name)
        if name not in ("wq", "wk"):  # q/k errors are amplified by the softmax; AutoAWQ leaves them unclipped
            w = search_clip(spec, w, clip_x[inp])
        w = np.ascontiguousarray(w, np.float32)
        # into a GGUF type: llama.cpp's rounding of the scaled, clipped weights
        qs[name] = ops.quantize(w, gguf_type) if gguf_type else rtn(spec, w)
        setattr(out, name, qs[name].dequantize())
    return qs, out, log


def quantize_awq(model: llama.LlamaModel, source_file, tokens: np.ndarray, bits: int = 4,
                 group_size: int = 128, zero_point: bool = True, search_samples: int | None = None,
                 gguf_type: str | None = None, min_grid: bool = False, float_inputs: bool = True,
                 progress: Progress | None = None) -> CalibratedModel:
    """AWQ on every block, sequentially. tokens: (samples, seq_len). search_samples: how many of the
    samples the scale search scores (default all; fewer is faster; mean |x| and the clip search always
    use all). float_inputs: each block's inputs are the outputs of the float (unquantized) blocks before
    it, as in AutoAWQ and llm-awq (False: the quantized blocks' outputs, GPTQ's sequential mode). gguf_type: write the scaled and clipped
    linears into this GGUF type instead of the group grid. min_grid: the zero point as a float16 offset
    (w = d*q + m, GGUF Q4_1's form) instead of an integer."""
    cfg = model.cfg
    spec = GridSpec(bits, group_size, sym=not zero_point, style="min" if min_grid and zero_point else "awq")
    for k in (cfg.n_embd, cfg.n_ff, cfg.n_head * cfg.head_dim):
        check_group(spec, k)
    n_search = int(search_samples or tokens.shape[0])
    logs = []

    def block(i, lw, X, cos, sin):
        qs, out, log = awq_block(cfg, spec, lw, X, cos, sin, n_search, gguf_type)
        logs.append(log)
        return qs, out

    info = {"method": "awq", "bits": bits, "group_size": group_size, "zero_point": zero_point,
            "samples": int(tokens.shape[0]), "seq_len": int(tokens.shape[1]), "search_samples": n_search,
            "gguf_type": gguf_type, "float_inputs": float_inputs}
    res = calibrate_sequential(model, source_file, tokens, block, progress, info, float_inputs=float_inputs)
    res.info["search"] = logs
    return res
