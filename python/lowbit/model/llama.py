"""A Llama-family forward pass over lowbit's kernels, written to be read top to bottom.

Covers llama, mistral, qwen2 (q/k/v bias) and granite (its four scalars): RMSNorm, RoPE (normal or
NeoX pairing, linear and YaRN scaling, llama-3 frequency factors), grouped-query attention with a KV cache,
SwiGLU feed-forward, tied or separate output embeddings. Every weight matmul is `lowbit.matmul`
on the stored quantized tensor: the model is never expanded to float in memory.

Numerics are llama.cpp's CPU path, step by step: the KV cache holds float16, queries and attention
probabilities are rounded to float16 before their products (ggml converts the f32 side of an f16 matmul),
activations are quantized to the weight type's dot type inside lowbit.matmul, RoPE uses libm's cosf/sinf
and ggml's contracted rotation (`rope`), the attention products sum in ggml's order (_core.attention_f16:
tinyBLAS lanes for a batch, ggml_vec_dot_f16's for one token), and q4_0 / q4_1 / q8_0 matmuls in ggml's
x86 order. On SmolLM2 Q4_1 / Q8_0 / Q4_0 the logits equal llama.cpp's bit for bit (tests/test_model.py).
The numpy `attention` below is the readable statement of what is computed, not of the summation order.
"""

from __future__ import annotations

import math
import operator
import os
from dataclasses import dataclass, field

import numpy as np

from .. import _core, ops

ROPE_NORM_ARCHS = {"llama", "mistral", "granite"}  # llama.cpp's LLAMA_ROPE_TYPE_NORM: pairs (2i, 2i+1)
ROPE_NEOX_ARCHS = {"qwen2"}                         # LLAMA_ROPE_TYPE_NEOX: pairs (i, i + n_rot/2)
SUPPORTED_ARCHS = ROPE_NORM_ARCHS | ROPE_NEOX_ARCHS
# llama.cpp built for this CPU uses ggml's AVX-512 code where the CPU has AVX-512 (the exp variant, and
# 16 rather than 8 lanes in the attention products), else the AVX2 code
_AVX512 = "avx512" in ops.cpu_info()["supported"]
# LayerWeights' matrices and their GGUF tensor names (blk.{i}.<name>.weight)
_LAYER_TENSORS = {"wq": "attn_q", "wk": "attn_k", "wv": "attn_v", "wo": "attn_output", "w_gate": "ffn_gate",
                  "w_up": "ffn_up", "w_down": "ffn_down"}
_LAYER_MATRICES = tuple(_LAYER_TENSORS)


class ModelError(ValueError):
    """The file describes a model this forward pass cannot run (architecture, shapes, settings)."""


@dataclass
class Config:
    arch: str
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_vocab: int
    n_ctx_train: int
    rms_eps: float
    rope_base: float
    n_rot: int
    rope_neox: bool
    rope_freq_scale: float = 1.0        # 1/factor of linear or YaRN RoPE scaling
    rope_yarn: bool = False             # YaRN: ramp between interpolated and original angles per pair
    n_ctx_orig: int = 0                 # YaRN: the context the model was trained with before scaling
    rope_attn_factor: float = 1.0       # rope.scaling.attn_factor: cos and sin are multiplied by it
    attention_scale: float = 0.0        # granite; 0 means 1/sqrt(head_dim)
    embedding_scale: float = 1.0        # granite
    residual_scale: float = 1.0         # granite
    logit_scale: float = 1.0            # granite (logits are divided by it)

    @classmethod
    def from_metadata(cls, md: dict) -> "Config":
        arch = md.get("general.architecture")
        if arch not in SUPPORTED_ARCHS:
            raise ModelError(f"[model] architecture {arch!r} is not supported; supported: {sorted(SUPPORTED_ARCHS)}")

        def get(key, default=None):
            v = md.get(f"{arch}.{key}", default)
            if v is None:
                raise ModelError(f"[model] missing metadata key {arch}.{key}")
            return v

        n_embd = int(get("embedding_length"))
        n_head = int(get("attention.head_count"))
        n_head_kv = get("attention.head_count_kv", n_head)
        if isinstance(n_head_kv, (list, tuple)):  # per-layer counts: only the uniform case is supported
            if len(set(n_head_kv)) != 1:
                raise ModelError("[model] per-layer head_count_kv is not supported")
            n_head_kv = n_head_kv[0]
        head_dim = int(md.get(f"{arch}.attention.key_length", n_embd // n_head))
        # llama.cpp's defaults: no type key means linear, no factor means 1 (llama-model.cpp)
        scaling = md.get(f"{arch}.rope.scaling.type", "linear")
        factor = float(md.get(f"{arch}.rope.scaling.factor", md.get(f"{arch}.rope.scale_linear", 0.0)) or 0.0)
        if scaling not in ("none", "linear", "yarn"):
            raise ModelError(f"[model] RoPE scaling {scaling!r} is not supported (none, linear, yarn)")
        freq_scale = float(np.float32(1) / np.float32(factor)) if factor and scaling != "none" else 1.0
        n_vocab = md.get(f"{arch}.vocab_size") or len(md.get("tokenizer.ggml.tokens", []))
        cfg = cls(
            arch=arch,
            n_layer=int(get("block_count")),
            n_embd=n_embd,
            n_ff=int(get("feed_forward_length")),
            n_head=n_head,
            n_head_kv=int(n_head_kv),
            head_dim=head_dim,
            n_vocab=int(n_vocab),
            n_ctx_train=int(get("context_length")),
            rms_eps=float(get("attention.layer_norm_rms_epsilon")),
            rope_base=float(md.get(f"{arch}.rope.freq_base", 10000.0)),
            n_rot=int(md.get(f"{arch}.rope.dimension_count", head_dim)),
            rope_neox=arch in ROPE_NEOX_ARCHS,
            rope_freq_scale=freq_scale,
            rope_yarn=scaling == "yarn",
            n_ctx_orig=int(md.get(f"{arch}.rope.scaling.original_context_length", get("context_length"))),
            rope_attn_factor=float(md.get(f"{arch}.rope.scaling.attn_factor", 1.0)),
        )
        if arch == "granite":
            cfg.attention_scale = float(md.get("granite.attention.scale", 0.0))
            cfg.embedding_scale = float(md.get("granite.embedding_scale", 1.0))
            cfg.residual_scale = float(md.get("granite.residual_scale", 1.0))
            cfg.logit_scale = float(md.get("granite.logit_scale", 1.0))
        if cfg.n_head % cfg.n_head_kv:
            raise ModelError(f"[model] head_count {cfg.n_head} is not a multiple of head_count_kv {cfg.n_head_kv}")
        return cfg


@dataclass
class LayerWeights:  # matrices: ops.QuantizedTensor, or ops.RepackedTensor after Weights.repack
    attn_norm: np.ndarray            # (n_embd,) f32
    wq: ops.QuantizedTensor          # (n_head * head_dim, n_embd)
    wk: ops.QuantizedTensor          # (n_head_kv * head_dim, n_embd)
    wv: ops.QuantizedTensor          # (n_head_kv * head_dim, n_embd)
    wo: ops.QuantizedTensor          # (n_embd, n_head * head_dim)
    ffn_norm: np.ndarray             # (n_embd,) f32
    w_gate: ops.QuantizedTensor      # (n_ff, n_embd)
    w_up: ops.QuantizedTensor        # (n_ff, n_embd)
    w_down: ops.QuantizedTensor      # (n_embd, n_ff)
    bq: np.ndarray | None = None     # (n_head * head_dim,) f32, qwen2
    bk: np.ndarray | None = None     # (n_head_kv * head_dim,) f32
    bv: np.ndarray | None = None     # (n_head_kv * head_dim,) f32


@dataclass
class Weights:
    tok_embd: ops.QuantizedTensor    # (n_vocab, n_embd)
    output_norm: np.ndarray          # (n_embd,) f32
    output: ops.QuantizedTensor      # (n_vocab, n_embd); the same object as tok_embd when tied
    layers: list[LayerWeights] = field(default_factory=list)
    rope_freqs: np.ndarray | None = None  # (n_rot/2,) f32 llama-3 frequency factors, divides theta

    @classmethod
    def from_gguf(cls, f, cfg: Config) -> "Weights":
        """f: an open lowbit GGUF file (tensor(name) -> QuantizedTensor view, array(name) -> f32)."""
        names = set(f.tensors)

        def q(name, shape):
            if name not in names:
                raise ModelError(f"[model] missing tensor {name}")
            t = f.tensor(name)
            if tuple(t.shape) != tuple(shape):
                raise ModelError(f"[model] tensor {name} has shape {t.shape}, expected {tuple(shape)}")
            return t

        def vec(name, n, optional=False):
            if name not in names:
                if optional:
                    return None
                raise ModelError(f"[model] missing tensor {name}")
            a = np.ascontiguousarray(f.array(name), dtype=np.float32).reshape(-1)
            if a.shape != (n,):
                raise ModelError(f"[model] tensor {name} has {a.size} values, expected {n}")
            return a

        d, hd = cfg.n_embd, cfg.head_dim
        tok = q("token_embd.weight", (cfg.n_vocab, d))
        out = q("output.weight", (cfg.n_vocab, d)) if "output.weight" in names else tok  # tied embeddings
        shapes = {"wq": (cfg.n_head * hd, d), "wk": (cfg.n_head_kv * hd, d), "wv": (cfg.n_head_kv * hd, d),
                  "wo": (d, cfg.n_head * hd), "w_gate": (cfg.n_ff, d), "w_up": (cfg.n_ff, d), "w_down": (d, cfg.n_ff)}
        layers = []
        for i in range(cfg.n_layer):
            p = f"blk.{i}."
            layers.append(LayerWeights(
                attn_norm=vec(p + "attn_norm.weight", d),
                ffn_norm=vec(p + "ffn_norm.weight", d),
                bq=vec(p + "attn_q.bias", cfg.n_head * hd, optional=True),
                bk=vec(p + "attn_k.bias", cfg.n_head_kv * hd, optional=True),
                bv=vec(p + "attn_v.bias", cfg.n_head_kv * hd, optional=True),
                **{a: q(f"{p}{t}.weight", shapes[a]) for a, t in _LAYER_TENSORS.items()},
            ))
        freqs = vec("rope_freqs.weight", cfg.n_rot // 2, optional=True)
        return cls(tok_embd=tok, output_norm=vec("output_norm.weight", d), output=out, layers=layers,
                   rope_freqs=freqs)

    def repack(self, f=None) -> int:
        """Move every weight matrix whose type has a rows8 kernel on this CPU (ops.rows8_kernel_types:
        q4_0, q4_1) and whose rows are a multiple of 8 to that layout (ops.RepackedTensor), once: the
        decode GEMVs 1.6-2x faster, the same bits. f: the GGUFFile they came from, whose pages of the
        repacked tensors are then dropped from this process (GGUFFile.release), so the copy replaces the
        mapped bytes in memory instead of doubling them. A tied output is repacked with its embedding,
        whose lookups then read rows from the repacked matrix. Returns the bytes repacked."""
        kernels = ops.rows8_kernel_types()
        moved = [0]

        def packed(w, name):
            if type(w) is not ops.QuantizedTensor or w.qtype not in kernels or len(w.shape) != 2 or w.shape[0] % 8:
                return w
            r = ops.RepackedTensor.from_quantized(
                w, done=None if f is None else (lambda start, stop: f.release(name, start, stop)))
            moved[0] += r.nbytes
            return r

        for i, lw in enumerate(self.layers):
            for a, t in _LAYER_TENSORS.items():
                setattr(lw, a, packed(getattr(lw, a), f"blk.{i}.{t}.weight"))
        tied = self.output is self.tok_embd
        self.output = packed(self.output, "token_embd.weight" if tied else "output.weight")
        if tied:
            self.tok_embd = self.output
        return moved[0]


class KVCache:
    """Keys and values of every layer for positions [0, n_ctx), stored as float16 like llama.cpp's
    default cache type."""

    def __init__(self, cfg: Config, n_ctx: int):
        shape = (cfg.n_layer, n_ctx, cfg.n_head_kv, cfg.head_dim)
        self.k = np.zeros(shape, np.float16)  # (n_layer, n_ctx, n_head_kv, head_dim)
        self.v = np.zeros(shape, np.float16)  # (n_layer, n_ctx, n_head_kv, head_dim)
        self.n_ctx = n_ctx

    def clear(self) -> None:
        self.k[...] = 0
        self.v[...] = 0


def rmsnorm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """x: (T, d) f32 -> x * 1/sqrt(mean(x^2) + eps) * weight, as ggml_rms_norm: squares in f32, their
    sum in f64 taken in order (cumsum; np.sum would sum pairwise), the scale a float32 reciprocal."""
    mean = (np.cumsum(x * x, axis=-1, dtype=np.float64)[..., -1:] / x.shape[-1]).astype(np.float32)
    scale = np.float32(1.0) / np.sqrt(mean + np.float32(eps))
    return (x * scale) * weight


def rope_angles(cfg: Config, pos: np.ndarray, freqs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of theta_i = pos * freq_scale * base^(-2i/n_rot) / factor_i, each (T, n_rot/2).

    In float32 the way ggml builds its rope cache: theta starts at pos and is multiplied by
    base^(-2/n_rot) once per pair, so the angles carry ggml's rounding too. YaRN (ggml's rope_yarn):
    pairs below the correction range keep the original angle, pairs above it are interpolated, a
    linear ramp in between, and cos/sin grow by 1 + 0.1 ln(factor)."""
    half = cfg.n_rot // 2
    f32 = np.float32
    theta_scale = f32(cfg.rope_base) ** f32(-2.0 / cfg.n_rot)
    steps = np.full((len(pos), half), theta_scale, np.float32)
    steps[:, 0] = pos.astype(np.float32)
    theta = np.cumprod(steps, axis=1, dtype=np.float32)  # sequential products, like ggml's loop
    if freqs is not None:
        theta = theta / freqs.astype(np.float32)
    mscale = f32(cfg.rope_attn_factor)
    interp = theta * f32(cfg.rope_freq_scale)
    if cfg.rope_yarn:
        low, high = yarn_correction_dims(cfg)
        y = (np.arange(half, dtype=np.float32) - low) / max(f32(0.001), high - low)
        ramp = f32(1) - np.minimum(f32(1), np.maximum(f32(0), y))          # ext_factor 1: ramp_mix = ramp
        theta = interp * (f32(1) - ramp) + theta * ramp
        # llama-context.cpp divides attn_factor by 1 + 0.1 ln(factor) and ggml's rope_yarn multiplies
        # it back, each rounded in float32 (so the product need not be exactly 1)
        factor = f32(1) / f32(cfg.rope_freq_scale)
        grow = f32(1) + f32(0.1) * np.log(factor)
        attn = (grow if factor > 1 else f32(1)) * (f32(1) / grow) * mscale
        mscale = attn * (f32(1) + f32(0.1) * np.log(f32(1) / f32(cfg.rope_freq_scale)))
    else:
        theta = interp
    # libm's cosf / sinf, as ggml's rope cache: not always the correctly rounded values (about 1% of
    # SmolLM2's angles differ from them by an ulp), so neither numpy's float32 nor its float64 functions
    cos, sin = _core.ggml_cos_sin(np.ascontiguousarray(theta, dtype=np.float32))
    if mscale != 1:
        cos, sin = cos * mscale, sin * mscale
    return cos, sin


def yarn_correction_dims(cfg: Config) -> tuple[np.float32, np.float32]:
    """ggml_rope_yarn_corr_dims with beta_fast 32, beta_slow 1 (llama.cpp's defaults): the pair
    indices where YaRN's ramp starts and ends."""
    def corr_dim(n_rot_turns: float) -> float:
        return cfg.n_rot * math.log(cfg.n_ctx_orig / (n_rot_turns * 2 * math.pi)) / (2 * math.log(cfg.rope_base))
    start, end = math.floor(corr_dim(32.0)), math.ceil(corr_dim(1.0))
    return np.float32(max(0, start)), np.float32(min(cfg.n_rot - 1, end))


def rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, neox: bool, n_rot: int) -> np.ndarray:
    """Rotate the first n_rot dims of every head. x: (T, H, head_dim); cos/sin: (T, n_rot/2).

    Pairs (2i, 2i+1), or (i, i + n_rot/2) with neox (GGUF's llama Q/K rows were permuted by the converter
    to match the first). Per pair: x0*c - x1*s and x0*s + x1*c, rounded as ggml's compiled code does, with
    the first product fused into the add (fma(x0, c, -(x1*s))). numpy has no fused multiply-add, so this
    runs in C++ (_core.ggml_rope, the fused path's own function). Leading axes before T (calibration's
    (S, T, H, head_dim) batches of sequences) share the same positions."""
    cos = np.ascontiguousarray(cos, dtype=np.float32)
    sin = np.ascontiguousarray(sin, dtype=np.float32)
    T, H, hd = x.shape[-3:]
    reps = x.size // (T * H * hd) if x.size else 1
    if reps > 1:
        cos, sin = np.tile(cos, (reps, 1)), np.tile(sin, (reps, 1))
    y = _core.ggml_rope(np.ascontiguousarray(x, dtype=np.float32).reshape(-1, H, hd), cos, sin, bool(neox), int(n_rot))
    return y.reshape(x.shape)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, pos0: int, scale: float) -> np.ndarray:
    """Causal grouped-query attention.

    q: (T, H, hd) queries at positions pos0..pos0+T-1; k, v: (S, Hkv, hd) f16 cache rows 0..S-1 with
    S = pos0 + T. Returns (T, H * hd) f32.
    """
    T, H, hd = q.shape
    S, Hkv, _ = k.shape
    group = H // Hkv
    qh = q.astype(np.float16).astype(np.float32).reshape(T, Hkv, group, hd).transpose(1, 2, 0, 3)  # (Hkv, g, T, hd)
    kh = k.astype(np.float32).transpose(1, 2, 0)   # (Hkv, hd, S)
    vh = v.astype(np.float32).transpose(1, 0, 2)   # (Hkv, S, hd)
    scores = (qh @ kh[:, None]) * scale            # (Hkv, g, T, S)
    # query t (at position pos0 + t) sees keys at positions <= pos0 + t; ggml's softmax rows in C++
    # (the numpy emulation in ggml_numerics is the spec it is tested against)
    probs = np.ascontiguousarray(scores, dtype=np.float32)
    valid = np.tile(pos0 + 1 + np.arange(T, dtype=np.int64), Hkv * group)
    _core.ggml_softmax(probs, valid, _AVX512, round_f16=True)  # ggml rounds the f32 side of an f16 matmul
    out = probs @ vh[:, None]                            # (Hkv, g, T, hd)
    return out.transpose(2, 0, 1, 3).reshape(T, H * hd).astype(np.float32)


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x), with ggml's exp (see ggml_numerics; computed in C++)."""
    return _core.ggml_silu(np.ascontiguousarray(x, dtype=np.float32), _AVX512)


def swiglu(g: np.ndarray, u: np.ndarray, threads: int | None = None) -> np.ndarray:
    """silu(g) * u in one threaded C++ pass (the same bits as the two numpy steps)."""
    return _core.ggml_swiglu(np.ascontiguousarray(g, dtype=np.float32), np.ascontiguousarray(u, dtype=np.float32),
                             _AVX512, "", threads or 0)


class LlamaModel:
    # observer(w, x): called with every weight matmul's QuantizedTensor and its float32 input (T, k)
    # before the product; lowbit.imatrix collects activation statistics through it. None: no calls.
    observer = None
    # The fused path: runs of blocks whose weights are all on the CPU go through one C++ call
    # (_core.LlamaBlocks, csrc/core/llama_block.cpp: the same steps and roundings as block()), which
    # saves the Python and numpy overhead of ~10 calls per block. Used when no observer is set;
    # use_fused = False, or LOWBIT_FUSED=0 in the environment, keeps every block in Python.
    use_fused = True

    def __init__(self, cfg: Config, weights: Weights, threads: int | None = None):
        self.cfg = cfg
        self.w = weights
        self.threads = threads
        self._fused = None          # _core.LlamaBlocks, built by _fused_blocks() from:
        self._fused_mats = []       # the layers' weight matrices (QuantizedTensor objects) it describes
        self._fused_on_cpu = []     # per layer: all its matrices on the CPU (so described, and fused)

    @classmethod
    def from_gguf(cls, f, threads: int | None = None, repack: bool = True) -> "LlamaModel":
        """repack: move the weights to the CPU kernels' fastest layout (Weights.repack; the same logits).
        Tools that read the weights' GGUF bytes (calibration) pass False."""
        cfg = Config.from_metadata(f.metadata)
        weights = Weights.from_gguf(f, cfg)
        if repack:
            weights.repack(f)
        return cls(cfg, weights, threads)

    def new_cache(self, n_ctx: int) -> KVCache:
        return KVCache(self.cfg, n_ctx)

    def _linear(self, x: np.ndarray, w: ops.QuantizedTensor, bias: np.ndarray | None = None) -> np.ndarray:
        if self.observer is not None:
            self.observer(w, x)
        # weights moved to the GPU (model/offload.py) run there; threads is a CPU setting
        y = ops.matmul(x, w, threads=self.threads if w.device == "cpu" else None)
        return y + bias if bias is not None else y

    def embed(self, tokens: np.ndarray) -> np.ndarray:
        """Rows of the token embedding, dequantized: (T,) int -> (T, n_embd) f32 (ggml_get_rows)."""
        emb = self.w.tok_embd
        if isinstance(emb, ops.RepackedTensor):  # tied to a repacked output
            x = emb.rows(tokens)
        else:
            rows = emb.data.reshape(emb.shape[0], -1)[tokens]
            x = ops.QuantizedTensor(np.ascontiguousarray(rows).reshape(-1), emb.qtype, (len(tokens), emb.shape[1]))
        out = x.dequantize(threads=self.threads)
        if self.cfg.embedding_scale != 1.0:  # granite; in place, no second (T, n_embd) array
            out *= np.float32(self.cfg.embedding_scale)
        return out

    def block(self, i: int, x: np.ndarray, pos0: int, cache: KVCache, cos, sin) -> np.ndarray:
        """One transformer block on x: (T, n_embd), writing this layer's K/V at pos0..pos0+T-1."""
        cfg, lw = self.cfg, self.w.layers[i]
        T = x.shape[0]
        h = rmsnorm(x, lw.attn_norm, cfg.rms_eps)
        q = self._linear(h, lw.wq, lw.bq).reshape(T, cfg.n_head, cfg.head_dim)
        k = self._linear(h, lw.wk, lw.bk).reshape(T, cfg.n_head_kv, cfg.head_dim)
        v = self._linear(h, lw.wv, lw.bv).reshape(T, cfg.n_head_kv, cfg.head_dim)
        q = rope(q, cos, sin, cfg.rope_neox, cfg.n_rot)
        k = rope(k, cos, sin, cfg.rope_neox, cfg.n_rot)
        cache.k[i, pos0:pos0 + T] = k
        cache.v[i, pos0:pos0 + T] = v
        scale = cfg.attention_scale or 1.0 / math.sqrt(cfg.head_dim)
        # attention() in C++: the same numerics, reading the f16 cache in place, causal part only
        a = _core.attention_f16(np.ascontiguousarray(q, dtype=np.float32), cache.k[i], cache.v[i], pos0, scale,
                                _AVX512, self.threads or 0)
        x = x + self._linear(a, lw.wo) * np.float32(cfg.residual_scale)
        h = rmsnorm(x, lw.ffn_norm, cfg.rms_eps)
        g = self._linear(h, lw.w_gate)
        u = self._linear(h, lw.w_up)
        x = x + self._linear(swiglu(g, u, self.threads), lw.w_down) * np.float32(cfg.residual_scale)
        return x

    def _fused_blocks(self):
        """The C++ description of the blocks whose weights are on the CPU (None for the others) and which
        blocks those are. Built on first use and again only when a weight matrix object was replaced
        (offload_layers and requantizing tools set new ones): one identity check per matrix per call. Norm
        and bias arrays are read in place, so changing their values in place is seen; replacing those
        arrays needs model._fused = None."""
        mats = [getattr(lw, n) for lw in self.w.layers for n in _LAYER_MATRICES]
        if self._fused is not None and len(mats) == len(self._fused_mats) and all(map(operator.is_, mats, self._fused_mats)):
            return self._fused, self._fused_on_cpu
        cfg, n = self.cfg, len(_LAYER_MATRICES)
        desc, on_cpu = [], []
        for i, lw in enumerate(self.w.layers):
            layer_mats = mats[i * n:(i + 1) * n]
            # GGUF block tensors on the CPU only: GPTQ/AWQ group tensors (lowbit.GroupQuantizedTensor) and
            # offloaded ones run through the Python block
            on_cpu.append(all(isinstance(m, (ops.QuantizedTensor, ops.RepackedTensor)) and m.device == "cpu"
                              for m in layer_mats))
            if not on_cpu[-1]:
                desc.append(None)
                continue
            d = {"attn_norm": lw.attn_norm, "ffn_norm": lw.ffn_norm}
            for name, m in zip(_LAYER_MATRICES, layer_mats):
                d[name] = (m.data, m.qtype, m.shape[0], m.shape[1], getattr(m, "layout", "gguf"))
            for name in ("bq", "bk", "bv"):
                if getattr(lw, name) is not None:
                    d[name] = getattr(lw, name)
            desc.append(d)
        self._fused = _core.LlamaBlocks(dict(
            n_embd=cfg.n_embd, n_ff=cfg.n_ff, n_head=cfg.n_head, n_head_kv=cfg.n_head_kv, head_dim=cfg.head_dim,
            n_rot=cfg.n_rot, rope_neox=cfg.rope_neox, rms_eps=cfg.rms_eps,
            attention_scale=cfg.attention_scale or 1.0 / math.sqrt(cfg.head_dim),
            residual_scale=cfg.residual_scale, avx512=_AVX512), desc)
        self._fused_mats, self._fused_on_cpu = mats, on_cpu
        return self._fused, on_cpu

    def _use_fused(self) -> bool:
        return self.use_fused and self.observer is None and os.environ.get("LOWBIT_FUSED", "1") != "0"

    def forward(self, tokens, pos0: int, cache: KVCache, logits_from: int = -1) -> np.ndarray:
        """Run tokens (T,) at positions pos0..pos0+T-1; return logits (T - logits_from, n_vocab) for the
        tokens from index logits_from on (default: only the last), as llama.cpp computes only the
        outputs it is asked for."""
        tokens = np.asarray(tokens, dtype=np.int64)
        T = len(tokens)
        if T == 0:
            raise ValueError("[forward] no tokens")
        if pos0 < 0 or pos0 + T > cache.n_ctx:
            raise ValueError(f"[forward] positions {pos0}..{pos0 + T - 1} do not fit the cache of {cache.n_ctx}")
        if tokens.min() < 0 or tokens.max() >= self.cfg.n_vocab:
            raise ValueError(f"[forward] token ids must be in [0, {self.cfg.n_vocab})")
        cos, sin = rope_angles(self.cfg, np.arange(pos0, pos0 + T), self.w.rope_freqs)
        x = np.ascontiguousarray(self.embed(tokens), dtype=np.float32)
        fused, on_cpu = self._fused_blocks() if self._use_fused() else (None, [False] * self.cfg.n_layer)
        i = 0
        while i < self.cfg.n_layer:
            if not on_cpu[i]:
                x = self.block(i, x, pos0, cache, cos, sin)
                i += 1
                continue
            j = i
            while j < self.cfg.n_layer and on_cpu[j]:
                j += 1
            fused.run(x, pos0, cache.k, cache.v, cos, sin, i, j, self.threads or 0)  # x updated in place
            i = j
        start = T - 1 if logits_from < 0 else logits_from
        h = rmsnorm(x[start:], self.w.output_norm, self.cfg.rms_eps)
        return self._linear(h, self.w.output) / np.float32(self.cfg.logit_scale)
