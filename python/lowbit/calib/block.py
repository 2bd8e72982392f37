"""One transformer block in float32 numpy weights, for calibration: the same math as
lowbit.model.llama.LlamaModel.block (its rmsnorm, rope, attention and silu), with the inputs of every
linear layer visible to a callback and any linear replaceable by its quantized version."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Callable

import numpy as np

from .. import ops
from ..model import llama

LINEARS = ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")
# linears that read the same input share one Hessian / one activation capture
INPUT_OF = {"wq": "attn_in", "wk": "attn_in", "wv": "attn_in", "wo": "attn_out",
            "w_gate": "ffn_in", "w_up": "ffn_in", "w_down": "down_in"}
# GGUF tensor names of the linears
GGUF_NAME = {"wq": "attn_q", "wk": "attn_k", "wv": "attn_v", "wo": "attn_output",
             "w_gate": "ffn_gate", "w_up": "ffn_up", "w_down": "ffn_down"}


@dataclass
class FloatLayer:
    attn_norm: np.ndarray            # (n_embd,) f32
    wq: np.ndarray                   # (n_head * head_dim, n_embd) f32, rows in GGUF (RoPE-permuted) order
    wk: np.ndarray                   # (n_head_kv * head_dim, n_embd) f32
    wv: np.ndarray                   # (n_head_kv * head_dim, n_embd) f32
    wo: np.ndarray                   # (n_embd, n_head * head_dim) f32
    ffn_norm: np.ndarray             # (n_embd,) f32
    w_gate: np.ndarray               # (n_ff, n_embd) f32
    w_up: np.ndarray                 # (n_ff, n_embd) f32
    w_down: np.ndarray               # (n_embd, n_ff) f32
    bq: np.ndarray | None = None     # (n_head * head_dim,) f32
    bk: np.ndarray | None = None
    bv: np.ndarray | None = None

    @classmethod
    def from_layer(cls, lw: llama.LayerWeights) -> "FloatLayer":
        def f(v):
            if isinstance(v, (ops.QuantizedTensor, ops.RepackedTensor)):  # a model's weights, repacked or not
                return v.dequantize()
            return None if v is None else np.array(v, np.float32)
        return cls(**{fl.name: f(getattr(lw, fl.name)) for fl in fields(cls)})

    def copy(self) -> "FloatLayer":
        return replace(self, **{fl.name: None if getattr(self, fl.name) is None else getattr(self, fl.name).copy()
                                for fl in fields(self)})

    def to_layer(self) -> llama.LayerWeights:
        """As the runtime's LayerWeights, linears as f32 tensors (for perplexity of the fake-quant model)."""
        def t(a):
            a = np.ascontiguousarray(a, np.float32)
            return ops.QuantizedTensor(a.view(np.uint8).reshape(-1), "f32", a.shape)
        kw = {fl.name: getattr(self, fl.name) for fl in fields(self)}
        kw.update({name: t(kw[name]) for name in LINEARS})
        return llama.LayerWeights(**kw)


Hook = Callable[[str, np.ndarray], None]  # (input name from INPUT_OF, activations (S, T, k) f32)


def _attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float) -> np.ndarray:
    """Causal grouped-query attention from position 0, plain float32 (calibration needs the function, not
    ggml's exact rounding, and numpy's exp is several times faster than the emulated one).
    q: (S, T, H, hd); k, v: (S, T, Hkv, hd) -> (S, T, H * hd)."""
    S, T, H, hd = q.shape
    Hkv = k.shape[2]
    qh = q.reshape(S, T, Hkv, H // Hkv, hd).transpose(0, 2, 3, 1, 4)          # (S, Hkv, g, T, hd)
    kt = k.transpose(0, 2, 3, 1)[:, :, None]                                   # (S, Hkv, 1, hd, T)
    scores = (qh @ kt) * np.float32(scale)                                     # (S, Hkv, g, T, T)
    scores = np.where(np.triu(np.ones((T, T), bool), 1), -np.inf, scores)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probs = scores / scores.sum(axis=-1, keepdims=True)
    out = probs @ v.transpose(0, 2, 1, 3)[:, :, None]                          # (S, Hkv, g, T, hd)
    return out.transpose(0, 3, 1, 2, 4).reshape(S, T, H * hd).astype(np.float32)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (np.float32(1) + np.exp(-x))


def _lin(x, w, b=None):
    y = x @ w.T
    return y + b if b is not None else y


def attention_part(cfg: llama.Config, lw: FloatLayer, h: np.ndarray, cos, sin, hook: Hook | None = None) -> np.ndarray:
    """The attention sub-layer on normalized inputs h: (S, T, n_embd), S sequences from position 0 ->
    the o-projection output (S, T, n_embd)."""
    S, T = h.shape[:2]
    q = _lin(h, lw.wq, lw.bq).reshape(S, T, cfg.n_head, cfg.head_dim)
    k = _lin(h, lw.wk, lw.bk).reshape(S, T, cfg.n_head_kv, cfg.head_dim)
    v = _lin(h, lw.wv, lw.bv).reshape(S, T, cfg.n_head_kv, cfg.head_dim)
    q = llama.rope(q, cos, sin, cfg.rope_neox, cfg.n_rot)
    k = llama.rope(k, cos, sin, cfg.rope_neox, cfg.n_rot)
    scale = cfg.attention_scale or 1.0 / math.sqrt(cfg.head_dim)
    # rounded like the runtime's float16 KV cache
    a = _attention(q, k.astype(np.float16).astype(np.float32), v.astype(np.float16).astype(np.float32), scale)
    if hook:
        hook("attn_out", a)
    return _lin(a, lw.wo)


def ffn_part(lw: FloatLayer, h: np.ndarray, hook: Hook | None = None) -> np.ndarray:
    """The SwiGLU feed-forward on normalized inputs h: (..., n_embd) -> (..., n_embd)."""
    m = silu(_lin(h, lw.w_gate)) * _lin(h, lw.w_up)
    if hook:
        hook("down_in", m)
    return _lin(m, lw.w_down)


def block_forward(cfg: llama.Config, lw: FloatLayer, x: np.ndarray, cos, sin, hook: Hook | None = None) -> np.ndarray:
    """x: (S, T, n_embd), S sequences starting at position 0 -> the block's output (S, T, n_embd).
    The hook sees each linear's input as (S, T, k)."""
    h = llama.rmsnorm(x, lw.attn_norm, cfg.rms_eps)
    if hook:
        hook("attn_in", h)
    x = x + attention_part(cfg, lw, h, cos, sin, hook) * np.float32(cfg.residual_scale)
    h = llama.rmsnorm(x, lw.ffn_norm, cfg.rms_eps)
    if hook:
        hook("ffn_in", h)
    return x + ffn_part(lw, h, hook) * np.float32(cfg.residual_scale)
