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
            if isinstance(v, ops.QuantizedTensor):
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


Hook = Callable[[str, np.ndarray], None]  # (input name from INPUT_OF, activations (T, k) f32)


def _lin(x, w, b=None):
    y = x @ w.T
    return y + b if b is not None else y


def attention_part(cfg: llama.Config, lw: FloatLayer, h: np.ndarray, cos, sin, hook: Hook | None = None) -> np.ndarray:
    """The attention sub-layer on normalized inputs h: (T, n_embd) -> o-projection output (T, n_embd)."""
    T = h.shape[0]
    q = _lin(h, lw.wq, lw.bq).reshape(T, cfg.n_head, cfg.head_dim)
    k = _lin(h, lw.wk, lw.bk).reshape(T, cfg.n_head_kv, cfg.head_dim)
    v = _lin(h, lw.wv, lw.bv).reshape(T, cfg.n_head_kv, cfg.head_dim)
    q = llama.rope(q, cos, sin, cfg.rope_neox, cfg.n_rot)
    k = llama.rope(k, cos, sin, cfg.rope_neox, cfg.n_rot)
    scale = cfg.attention_scale or 1.0 / math.sqrt(cfg.head_dim)
    # the runtime keeps K/V in a float16 cache
    a = llama.attention(q, k.astype(np.float16), v.astype(np.float16), 0, scale)
    if hook:
        hook("attn_out", a)
    return _lin(a, lw.wo)


def ffn_part(lw: FloatLayer, h: np.ndarray, hook: Hook | None = None) -> np.ndarray:
    """The SwiGLU feed-forward on normalized inputs h: (T, n_embd) -> (T, n_embd)."""
    m = llama.silu(_lin(h, lw.w_gate)) * _lin(h, lw.w_up)
    if hook:
        hook("down_in", m)
    return _lin(m, lw.w_down)


def block_forward(cfg: llama.Config, lw: FloatLayer, x: np.ndarray, cos, sin, hook: Hook | None = None) -> np.ndarray:
    """x: (T, n_embd) one sequence starting at position 0 -> the block's output (T, n_embd)."""
    h = llama.rmsnorm(x, lw.attn_norm, cfg.rms_eps)
    if hook:
        hook("attn_in", h)
    x = x + attention_part(cfg, lw, h, cos, sin, hook) * np.float32(cfg.residual_scale)
    h = llama.rmsnorm(x, lw.ffn_norm, cfg.rms_eps)
    if hook:
        hook("ffn_in", h)
    return x + ffn_part(lw, h, hook) * np.float32(cfg.residual_scale)
