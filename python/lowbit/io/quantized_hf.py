"""Loading GPTQ and AutoAWQ (GEMM) Hugging Face checkpoints into a runnable LlamaModel.

The directory holds config.json with a `quantization_config` (or, for older AutoGPTQ checkpoints, a
quantize_config.json beside it), safetensors weights (read with lowbit's validating reader) and the
tokenizer files. Every linear of the blocks becomes a lowbit.GroupQuantizedTensor (unpacked with
lowbit.io.gptq_awq, then repacked once for the kernels); embeddings, norms and lm_head are the
checkpoint's float tensors as they are stored (f16 / bf16 / f32). The model metadata is derived from
config.json exactly as `lowbit convert` derives it, so the forward pass is the GGUF one.

Supported: quant_method "gptq" (bits 2/3/4/8, any group_size or -1, desc_act with g_idx, sym or asym,
checkpoint_format "gptq" = v1 zeros stored minus one, or "gptq_v2" = zeros as they are) and "awq"
(version "gemm", 4-bit, with or without zero point). Llama's Q/K rows are permuted into GGUF's RoPE order
on the unpacked codes, scales and zeros (the packing runs along k, so rows permute freely).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import CheckpointError
from ..group import GroupQuantizedTensor
from .gptq_awq import unpack_awq, unpack_bits
from .hf import (
    config_to_gguf_metadata,
    gguf_architecture,
    llama3_rope_factors,
    needs_qk_permutation,
    open_hf_checkpoint,
    permute_qk,
    read_json,
)

LINEARS = {"wq": "self_attn.q_proj", "wk": "self_attn.k_proj", "wv": "self_attn.v_proj", "wo": "self_attn.o_proj",
           "w_gate": "mlp.gate_proj", "w_up": "mlp.up_proj", "w_down": "mlp.down_proj"}
GPTQ_BITS = (2, 3, 4, 8)


def _fail(path: str, msg: str):
    raise CheckpointError(f"[load_quantized] {path}: {msg}")


def quantization_config(path: str) -> dict | None:
    """The checkpoint's quantization settings (config.json's quantization_config, else a GPTQ
    quantize_config.json), or None for a directory that is not a quantized checkpoint."""
    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        return None
    config = read_json(cfg_path)
    qc = config.get("quantization_config") if isinstance(config, dict) else None
    if qc is None and os.path.isfile(os.path.join(path, "quantize_config.json")):
        qc = {"quant_method": "gptq", **read_json(os.path.join(path, "quantize_config.json"))}
    if qc is not None and not isinstance(qc, dict):
        _fail(path, f"quantization_config must be an object, got {type(qc).__name__}")
    return qc


def is_quantized_checkpoint(path) -> bool:
    """A directory with a GPTQ / AWQ quantization config (what `lowbit run` loads with load_quantized)."""
    path = os.fspath(path)
    return os.path.isdir(path) and quantization_config(path) is not None


def check_settings(path: str, qc: dict) -> dict:
    """Validated settings: method, bits, group_size, zero_offset (1 for GPTQ v1), awq."""
    method = str(qc.get("quant_method", "")).lower()
    bits, group = qc.get("bits"), qc.get("group_size", -1)
    if method not in ("gptq", "awq"):
        _fail(path, f"quant_method {qc.get('quant_method')!r} is not supported; lowbit loads gptq and awq")
    if type(group) is not int or (group != -1 and group < 1):
        _fail(path, f"group_size must be -1 or a positive integer, got {group!r}")
    if method == "awq":
        version = str(qc.get("version", "gemm")).lower()
        if version != "gemm":
            _fail(path, f"AWQ version {qc.get('version')!r} is not supported; lowbit loads the GEMM layout")
        if bits != 4:
            _fail(path, f"AWQ bits must be 4, got {bits!r}")
        return {"method": "awq", "bits": 4, "group_size": group, "zero_offset": 0}
    if bits not in GPTQ_BITS:
        _fail(path, f"GPTQ bits must be one of {GPTQ_BITS}, got {bits!r}")
    fmt = qc.get("checkpoint_format", qc.get("format", "gptq"))  # GPTQModel has written both keys
    if str(fmt).lower() not in ("gptq", "gptq_v2"):
        _fail(path, f"GPTQ checkpoint_format {fmt!r} is not supported (gptq, gptq_v2)")
    return {"method": "gptq", "bits": bits, "group_size": group, "zero_offset": 1 if str(fmt).lower() == "gptq" else 0,
            "desc_act": bool(qc.get("desc_act", False))}


def _raw(ckpt, name: str, dtypes: tuple, shape: tuple):
    if name not in ckpt._where:
        _fail(ckpt.path, f"missing tensor {name}")
    if ckpt.dtype(name) not in dtypes:
        _fail(ckpt.path, f"tensor {name} is {ckpt.dtype(name)}, expected {' or '.join(dtypes)}")
    if tuple(ckpt.shape(name)) != tuple(shape):
        _fail(ckpt.path, f"tensor {name} has shape {tuple(ckpt.shape(name))}, expected {tuple(shape)}")
    return ckpt.raw(name)


def _float(ckpt, name: str, shape: tuple) -> np.ndarray:
    _raw(ckpt, name, ("F16", "BF16", "F32"), shape)
    return np.ascontiguousarray(ckpt.array(name), np.float32)


def load_group_linear(ckpt, prefix: str, n: int, k: int, st: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One packed linear of output size n and input size k -> (q (n, k) uint8, scales (n, G) f32, zeros
    (n, G) f32 as dequantization uses them, g_idx (k,) int)."""
    bits, group = st["bits"], st["group_size"]
    G = 1 if group == -1 else -(-k // group)
    if st["method"] == "awq":
        if n % 8:
            _fail(ckpt.path, f"{prefix}: AWQ needs output sizes that are multiples of 8, got {n}")
        q, zeros, scales = unpack_awq(_raw(ckpt, prefix + "qweight", ("I32",), (k, n // 8)),
                                      _raw(ckpt, prefix + "qzeros", ("I32",), (G, n // 8)),
                                      _float(ckpt, prefix + "scales", (G, n)))
        g_idx = np.arange(k) // (k if group == -1 else group)
        return q, scales, zeros, g_idx
    per = 32 if bits == 3 else 32 // bits  # values in one bit stream (32 values in 3 words for 3 bits)
    for what, size in (("input", k), ("output", n)):
        if size % per:
            _fail(ckpt.path, f"{prefix}: {bits}-bit GPTQ packs {what} sizes in runs of {per}, got {size}")
    q = unpack_bits(np.ascontiguousarray(_raw(ckpt, prefix + "qweight", ("I32",), (k * bits // 32, n)).T), bits)
    zeros = unpack_bits(_raw(ckpt, prefix + "qzeros", ("I32",), (G, n * bits // 32)), bits).astype(np.float32)
    zeros = np.ascontiguousarray(zeros.T + st["zero_offset"])
    scales = np.ascontiguousarray(_float(ckpt, prefix + "scales", (G, n)).T)
    if prefix + "g_idx" in ckpt._where:
        g_idx = _raw(ckpt, prefix + "g_idx", ("I32", "I64"), (k,)).astype(np.int64)
        if k and (g_idx.min() < 0 or g_idx.max() >= G):
            _fail(ckpt.path, f"{prefix}g_idx holds groups outside [0, {G})")
    elif st["desc_act"]:  # act-order puts columns in any group: only g_idx says which
        _fail(ckpt.path, f"missing tensor {prefix}g_idx (desc_act is set)")
    else:
        g_idx = np.arange(k) // (k if group == -1 else group)
    return q, scales, zeros, g_idx


def _embedding(ckpt, name: str, shape: tuple):
    """A float tensor kept in its stored type as an ops.QuantizedTensor (f16 / bf16 / f32)."""
    return _float_linear(ckpt, name, shape, None)


def _float_linear(ckpt, name: str, shape: tuple, heads: tuple | None):
    """A linear the quantizer left in float (AWQ's modules_to_not_convert, GPTQModel's per-module
    exclusions), kept in its stored type, Q/K rows permuted like the packed ones."""
    from ..ops import QuantizedTensor
    raw = np.ascontiguousarray(_raw(ckpt, name, ("F16", "BF16", "F32"), shape))
    if heads is not None:
        raw = np.ascontiguousarray(permute_qk(raw, *heads))
    return QuantizedTensor(raw.view(np.uint8).reshape(-1), {"F16": "f16", "BF16": "bf16", "F32": "f32"}[ckpt.dtype(name)],
                           shape)


def _block_linear(ckpt, prefix: str, shape: tuple, st: dict, qk: tuple | None, has_bias: bool):
    """One linear of a block (packed, or left in float by the quantizer) and its bias, in GGUF's row
    order: qk = (n_head, n_kv_head) for llama's Q/K rows, permuted for RoPE as llama.cpp's converter does."""
    n, k = shape
    b = None
    if prefix + ".bias" in ckpt._where:
        b = _float(ckpt, prefix + ".bias", (n,))
        if not has_bias:  # some exporters store all-zero biases on every linear
            if np.any(b != 0):
                _fail(ckpt.path, f"{prefix}.bias: this architecture has no bias on {prefix.split('.', 3)[-1]}")
            b = None
    if b is not None and qk is not None:
        b = permute_qk(b, *qk)
    if prefix + ".qweight" not in ckpt._where and prefix + ".weight" in ckpt._where:
        return _float_linear(ckpt, prefix + ".weight", shape, qk), b
    q, scales, zeros, g_idx = load_group_linear(ckpt, prefix + ".", n, k, st)
    if qk is not None:
        q, scales, zeros = (permute_qk(a, *qk) for a in (q, scales, zeros))
    return GroupQuantizedTensor.from_grid(q, scales, zeros, g_idx, st["bits"], st["group_size"]), b


def load_quantized(path, threads: int | None = None, progress=None):
    """-> (LlamaModel, metadata dict, settings dict) for a GPTQ / AWQ checkpoint directory. The metadata
    (model and tokenizer keys, GGUF-style) is what Tokenizer.from_gguf_metadata takes."""
    from ..model import llama
    from .hf_tokenizer import tokenizer_to_gguf_metadata

    path = os.fspath(path)
    qc = quantization_config(path)
    if qc is None:
        _fail(path, "no quantization_config in config.json (not a GPTQ / AWQ checkpoint)")
    st = check_settings(path, qc)
    with open_hf_checkpoint(path) as ckpt:
        config = ckpt.config
        arch = gguf_architecture(config)
        md = {k: v.value for k, v in config_to_gguf_metadata(config, 0).items()}
        md["general.architecture"] = arch
        md.update({k: v.value for k, v in tokenizer_to_gguf_metadata(path, config, ckpt.tokenizer_json,
                                                                     ckpt.tokenizer_config).items()})
        if "model.embed_tokens.weight" not in ckpt._where:
            _fail(path, "missing tensor model.embed_tokens.weight")
        md[f"{arch}.vocab_size"] = int(ckpt.shape("model.embed_tokens.weight")[0])
        cfg = llama.Config.from_metadata(md)
        d, hd = cfg.n_embd, cfg.head_dim
        shapes = {"wq": (cfg.n_head * hd, d), "wk": (cfg.n_head_kv * hd, d), "wv": (cfg.n_head_kv * hd, d),
                  "wo": (d, cfg.n_head * hd), "w_gate": (cfg.n_ff, d), "w_up": (cfg.n_ff, d), "w_down": (d, cfg.n_ff)}
        heads = {"wq": (cfg.n_head, cfg.n_head), "wk": (cfg.n_head, cfg.n_head_kv)}
        permute = needs_qk_permutation(arch)
        layers = []
        for i in range(cfg.n_layer):
            p = f"model.layers.{i}."
            lin, bias = {}, {}
            for name, hf in LINEARS.items():
                n, k = shapes[name]
                qk = heads.get(name) if permute else None
                lin[name], bias[name] = _block_linear(ckpt, p + hf, (n, k), st, qk, name in ("wq", "wk", "wv"))
            layers.append(llama.LayerWeights(
                attn_norm=_float(ckpt, p + "input_layernorm.weight", (d,)),
                ffn_norm=_float(ckpt, p + "post_attention_layernorm.weight", (d,)),
                bq=bias["wq"], bk=bias["wk"], bv=bias["wv"], **lin))
            if progress:
                progress(i + 1, cfg.n_layer)
        tok = _embedding(ckpt, "model.embed_tokens.weight", (cfg.n_vocab, d))
        if "lm_head.qweight" in ckpt._where:  # GPTQ's lm_head: true quantizes the output matrix too
            q, scales, zeros, g_idx = load_group_linear(ckpt, "lm_head.", cfg.n_vocab, d, st)
            out = GroupQuantizedTensor.from_grid(q, scales, zeros, g_idx, st["bits"], st["group_size"])
        elif "lm_head.weight" in ckpt._where:
            out = _embedding(ckpt, "lm_head.weight", (cfg.n_vocab, d))
        elif config.get("tie_word_embeddings", True) is False:
            _fail(path, "missing tensor lm_head.weight (config.json says the embeddings are not tied)")
        else:
            out = tok
        factors = llama3_rope_factors(config) if arch == "llama" else None
        weights = llama.Weights(tok_embd=tok, output_norm=_float(ckpt, "model.norm.weight", (d,)), output=out,
                                layers=layers,
                                rope_freqs=None if factors is None else np.asarray(factors, np.float32))
    return llama.LlamaModel(cfg, weights, threads), md, st
