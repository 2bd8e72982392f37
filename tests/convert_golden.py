"""Digests of a GGUF file for comparing lowbit convert with llama.cpp's convert_hf_to_gguf.py.

digest(path) -> {"tensors": {name: [type, shape, sha256 of the bytes]}, "tensor_order": [...],
                 "metadata": {key: [gguf type, value or sha256 of a long array]}}

Keys that name the producing tool or the input directory are left out (TOOL_KEYS).
tests/make_convert_golden.py writes tests/golden/convert_smollm2.json from the oracle's files.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from lowbit.io import StringArray, open_gguf
from lowbit.io.safetensors import SafetensorsEntry, write_safetensors

# general.* keys the converter derives from the model card / directory name, not from the model
TOOL_KEYS = ("general.name", "general.basename", "general.finetune", "general.size_label", "general.version",
             "general.organization", "general.license", "general.languages", "general.base_model.",
             "general.tags", "general.datasets", "general.quantized_by", "general.url", "general.repo_url")


def tiny_checkpoint(path, n_layer=2, sharded=False, bias=False, arch="LlamaForCausalLM", tokenizer_files=None,
                    n_head=4, n_kv=2, rope_scaling=None, vocab=49152):
    """A small random bf16 Llama/Mistral/Qwen2 checkpoint (fixed seed), with the given tokenizer files.

    ffn rows of 144 are not a multiple of 32, so q8_0 conversions take llama.cpp's F16 fallback.
    """
    rng = np.random.default_rng(4)
    d, ff = 64, 144
    model_type = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2"}[arch]
    cfg = {"architectures": [arch], "model_type": model_type, "hidden_size": d, "intermediate_size": ff,
           "num_hidden_layers": n_layer, "num_attention_heads": n_head, "num_key_value_heads": n_kv,
           "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": vocab,
           "tie_word_embeddings": True}
    if rope_scaling:
        cfg.update(rope_scaling=rope_scaling, rope_theta=500000.0)
    if bias and arch != "Qwen2ForCausalLM":
        cfg["attention_bias"] = True
    shapes = {"model.embed_tokens.weight": (vocab, d), "model.norm.weight": (d,)}
    for i in range(n_layer):
        L = f"model.layers.{i}."
        shapes.update({L + "input_layernorm.weight": (d,), L + "post_attention_layernorm.weight": (d,),
                       L + "self_attn.q_proj.weight": (d, d), L + "self_attn.k_proj.weight": (d // n_head * n_kv, d),
                       L + "self_attn.v_proj.weight": (d // n_head * n_kv, d), L + "self_attn.o_proj.weight": (d, d),
                       L + "mlp.gate_proj.weight": (ff, d), L + "mlp.up_proj.weight": (ff, d),
                       L + "mlp.down_proj.weight": (d, ff)})
        if bias:
            shapes.update({L + "self_attn.q_proj.bias": (d,), L + "self_attn.k_proj.bias": (d // n_head * n_kv,),
                           L + "self_attn.v_proj.bias": (d // n_head * n_kv,)})
    arrays = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    os.makedirs(path)
    json.dump(cfg, open(os.path.join(path, "config.json"), "w"))
    for name, obj in (tokenizer_files or {}).items():
        json.dump(obj, open(os.path.join(path, name), "w"))
    names = list(arrays)
    parts = [names[: len(names) // 2], names[len(names) // 2:]] if sharded else [names]
    wm = {}
    for j, part in enumerate(parts):
        fn = f"model-{j + 1:05d}-of-{len(parts):05d}.safetensors" if sharded else "model.safetensors"
        write_safetensors(os.path.join(path, fn),
                          [SafetensorsEntry(n, "BF16", arrays[n].shape, lambda n=n: arrays[n]) for n in part])
        wm.update({n: fn for n in part})
    if sharded:
        json.dump({"metadata": {}, "weight_map": wm}, open(os.path.join(path, "model.safetensors.index.json"), "w"))
    return cfg, arrays


def _is_tool_key(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in TOOL_KEYS)


def _value(v):
    if isinstance(v, StringArray):  # long string arrays of an opened file
        v = v.tolist()
    if isinstance(v, list) and len(v) > 8:
        return {"len": len(v), "sha256": hashlib.sha256(json.dumps(v, ensure_ascii=False).encode()).hexdigest()}
    return v


def digest(path: str) -> dict:
    with open_gguf(path) as f:
        tensors = {}
        for name, t in f.tensors.items():
            data = f._map[t.offset:t.offset + t.nbytes]
            tensors[name] = [t.qtype, list(t.shape), hashlib.sha256(memoryview(data)).hexdigest()]
        metadata = {k: [v.type.name.lower(), _value(f.metadata[k])]
                    for k, v in f.typed_metadata.items() if not _is_tool_key(k)}
        return {"tensors": tensors, "tensor_order": list(f.tensors), "metadata": metadata}


def compact(d: dict) -> dict:
    """A digest small enough to commit: one sha256 over every tensor's (name, type, shape, sha256) in file
    order, the type and shape of each tensor, and the metadata."""
    lines = "\n".join(f"{n} {t} {s} {h}" for n, (t, s, h) in d["tensors"].items())
    return {"tensors_sha256": hashlib.sha256(lines.encode()).hexdigest(),
            "tensor_types": {n: f"{t} {'x'.join(map(str, s))}" for n, (t, s, h) in d["tensors"].items()},
            "metadata": d["metadata"]}


def compact_differences(ours: dict, theirs: dict) -> list[str]:
    """differences() for compact digests."""
    a, b = ours["metadata"], theirs["metadata"]
    out = [f"metadata {k}: lowbit {str(a.get(k))[:80]} vs llama.cpp {str(b.get(k))[:80]}"
           for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    out += [f"tensor {n}: lowbit {ours['tensor_types'].get(n)} vs llama.cpp {theirs['tensor_types'].get(n)}"
            for n in sorted(set(ours["tensor_types"]) | set(theirs["tensor_types"]))
            if ours["tensor_types"].get(n) != theirs["tensor_types"].get(n)]
    if list(ours["tensor_types"]) != list(theirs["tensor_types"]):
        out.append("tensor order differs")
    if not out and ours["tensors_sha256"] != theirs["tensors_sha256"]:
        out.append("tensor bytes differ (names, types and shapes agree)")
    return out


def differences(ours: dict, theirs: dict) -> list[str]:
    """Human-readable differences between two digests (empty: the files agree)."""
    out = []
    for k in sorted(set(ours["metadata"]) | set(theirs["metadata"])):
        a, b = ours["metadata"].get(k), theirs["metadata"].get(k)
        if a != b:
            out.append(f"metadata {k}: lowbit {str(a)[:80]} vs llama.cpp {str(b)[:80]}")
    for n in sorted(set(ours["tensors"]) | set(theirs["tensors"])):
        a, b = ours["tensors"].get(n), theirs["tensors"].get(n)
        if a != b:
            out.append(f"tensor {n}: lowbit {a} vs llama.cpp {b}")
    if not out and ours["tensor_order"] != theirs["tensor_order"]:
        out.append("tensor order differs")
    return out
