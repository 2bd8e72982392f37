"""Hugging Face checkpoint <-> GGUF, one tensor at a time.

    from lowbit.convert import convert_hf_to_gguf, export_gguf_to_hf

    convert_hf_to_gguf("SmolLM2-135M-Instruct/", "smollm2-f16.gguf", outtype="f16")
    export_gguf_to_hf("smollm2-q4_1.gguf", "smollm2-hf/", dtype="f32")   # dequantized

convert_hf_to_gguf writes what llama.cpp's convert_hf_to_gguf.py writes for LlamaForCausalLM,
MistralForCausalLM and Qwen2ForCausalLM: the same tensor names, Q/K row permutation (llama), tensor
types (norms and other 1-D tensors stay F32; q8_0 rows whose length is not a multiple of 32 fall back
to F16), {arch}.* and tokenizer.* keys. Tensors are read, converted and written one at a time, so
memory holds the largest tensor in float32 plus its output, not the model.

export_gguf_to_hf dequantizes every tensor, undoes the Q/K permutation and writes safetensors
(sharded past 2 GB), config.json, tokenizer.json, tokenizer_config.json and generation_config.json
that transformers loads (LlamaForCausalLM / Qwen2ForCausalLM, PreTrainedTokenizerFast).
"""

from __future__ import annotations

import logging
import os
from typing import Callable

import gguf
import numpy as np

from . import ops
from .errors import CheckpointError
from .io.gguf import GGUFValue, LazyTensor, open_gguf, write_gguf
from .io.hf import (DEFAULT_SHARD_BYTES, HF_ARCHITECTURE, config_to_gguf_metadata, gguf_architecture,
                    gguf_metadata_to_config, gguf_to_hf_name, hf_to_gguf_name, llama3_rope_factors,
                    llama3_rope_scaling, needs_qk_permutation, open_hf_checkpoint, permute_qk, unpermute_qk,
                    write_hf_checkpoint)
from .io.hf_tokenizer import gguf_metadata_to_tokenizer_files, tokenizer_to_gguf_metadata
from .io.safetensors import SafetensorsEntry

__all__ = ["OUTTYPES", "EXPORT_DTYPES", "convert_hf_to_gguf", "export_gguf_to_hf", "tensor_type"]

log = logging.getLogger(__name__)

# --outtype -> llama.cpp file type (general.file_type)
OUTTYPES = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "bf16": gguf.LlamaFileType.MOSTLY_BF16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
}
# export --dtype -> (safetensors dtype, config.json torch_dtype)
EXPORT_DTYPES = {"f32": ("F32", "float32"), "f16": ("F16", "float16"), "bf16": ("BF16", "bfloat16")}
_Q8_0_BLOCK = 32

Progress = Callable[[int, int], None]


def tensor_type(gguf_name: str, shape: tuple, outtype: str) -> str:
    """The GGUF type llama.cpp's converter gives a tensor (ModelBase.prepare_tensors)."""
    if len(shape) <= 1 or gguf_name.endswith("_norm.weight") or not gguf_name.endswith(".weight"):
        return "f32"  # ggml's norm and 1-D ops take F32 only
    if outtype == "q8_0" and shape[-1] % _Q8_0_BLOCK:
        return "f16"  # gguf-py raises QuantError and the converter falls back to F16
    return outtype


def _encode(w: np.ndarray, qtype: str):
    """float32 -> the array or QuantizedTensor write_gguf stores as qtype (rounding as gguf-py does)."""
    if qtype == "f32":
        return w
    if qtype == "f16":
        return w.astype(np.float16)  # numpy's round-to-nearest-even, as gguf-py's quantize(F16)
    return ops.quantize(np.ascontiguousarray(w), qtype)


def _same_file(a: str, b: str) -> bool:
    return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def _auto_outtype(ckpt) -> str:
    """llama.cpp's --outtype auto: the first 2-D bf16 or f16 tensor names the type, else f16."""
    for name in ckpt.tensor_names:
        if len(ckpt.shape(name)) >= 2 and ckpt.dtype(name) in ("BF16", "F16"):
            return ckpt.dtype(name).lower()
    return "f16"


def convert_hf_to_gguf(hf_dir, out_path, outtype: str = "auto", *, progress: Progress | None = None) -> dict:
    """Convert an HF Llama/Mistral/Qwen2 safetensors checkpoint to GGUF; returns a summary dict.

    outtype: f32, f16, bf16, q8_0, or auto (bf16 or f16 as the checkpoint's weights are, as llama.cpp).
    """
    hf_dir, out_path = os.fspath(hf_dir), os.fspath(out_path)
    if outtype not in (*OUTTYPES, "auto"):
        raise ValueError(f"[convert] outtype {outtype!r}, expected one of {', '.join(OUTTYPES)}, auto")
    with open_hf_checkpoint(hf_dir) as ckpt:
        if outtype == "auto":
            outtype = _auto_outtype(ckpt)
        for name in os.listdir(hf_dir):
            if _same_file(out_path, os.path.join(hf_dir, name)):
                raise CheckpointError(f"[convert] refusing to overwrite the input file {out_path}")
        config = ckpt.config
        arch = gguf_architecture(config)
        model_md = config_to_gguf_metadata(config, int(OUTTYPES[outtype]))  # validates config.json first
        n_head = model_md[f"{arch}.attention.head_count"].value
        n_head_kv = model_md[f"{arch}.attention.head_count_kv"].value
        permute = needs_qk_permutation(arch)

        tensors = []
        rope_factors = llama3_rope_factors(config) if arch == "llama" else None
        if rope_factors is not None:  # the converter's generate_extra_tensors come first
            tensors.append(("rope_freqs.weight", None, rope_factors.shape, "f32", None))
        for hf_name in ckpt.tensor_names:
            name = hf_to_gguf_name(hf_name)
            if name is None:
                continue
            if ckpt.dtype(hf_name) not in ("F32", "F16", "BF16", "F64"):
                raise CheckpointError(f"[convert] tensor {hf_name!r} is {ckpt.dtype(hf_name)}; lowbit converts "
                                      f"float checkpoints (quantized ones are not dequantized here)")
            shape = ckpt.shape(hf_name)
            qtype = tensor_type(name, shape, outtype)
            qk_heads = None
            if permute and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
                qk_heads = (n_head, n_head)
            elif permute and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
                qk_heads = (n_head, n_head_kv)
            tensors.append((name, hf_name, shape, qtype, qk_heads))

        done = 0

        def produce(hf_name, qtype, qk_heads):
            def make():
                nonlocal done
                w = rope_factors if hf_name is None else ckpt.array(hf_name)
                if qk_heads is not None:
                    w = permute_qk(w, *qk_heads)
                out = _encode(w, qtype)
                done += 1
                if progress:
                    progress(done, len(tensors))
                return out
            return make

        md: dict = {"general.architecture": GGUFValue(arch, "string"), "general.type": GGUFValue("model", "string"),
                    "general.name": GGUFValue(os.path.basename(os.path.abspath(hf_dir)), "string")}
        n_params = sum(int(np.prod(s)) for _, _, s, _, _ in tensors)
        md["general.size_label"] = GGUFValue(gguf.size_label(n_params, n_params, 0, 0), "string")
        md.update(model_md)
        md["general.quantization_version"] = GGUFValue(gguf.GGML_QUANT_VERSION, "uint32")
        md.update(tokenizer_to_gguf_metadata(hf_dir, config, ckpt.tokenizer_json, ckpt.tokenizer_config))
        write_gguf(out_path, md, [(name, LazyTensor(qtype, shape, produce(hf_name, qtype, qk)))
                                  for name, hf_name, shape, qtype, qk in tensors])
    types: dict[str, int] = {}
    for _, _, _, qtype, _ in tensors:
        types[qtype] = types.get(qtype, 0) + 1
    return {"input": hf_dir, "output": out_path, "outtype": outtype, "architecture": arch,
            "tensors": len(tensors), "params": n_params, "types": types, "bytes": os.path.getsize(out_path)}


def export_gguf_to_hf(gguf_path, out_dir, dtype: str = "f32", *, max_shard_bytes: int = DEFAULT_SHARD_BYTES,
                      progress: Progress | None = None) -> dict:
    """Dequantize a Llama-family GGUF into an HF checkpoint directory transformers loads."""
    gguf_path, out_dir = os.fspath(gguf_path), os.fspath(out_dir)
    if dtype not in EXPORT_DTYPES:
        raise ValueError(f"[export_hf] dtype {dtype!r}, expected one of {', '.join(EXPORT_DTYPES)}")
    st_dtype, torch_dtype = EXPORT_DTYPES[dtype]
    with open_gguf(gguf_path) as f:
        md = f.metadata
        arch = md.get("general.architecture")
        if arch not in HF_ARCHITECTURE:
            raise CheckpointError(f"[export_hf] GGUF architecture {arch!r} is not supported; lowbit exports "
                                  f"{', '.join(HF_ARCHITECTURE)}")
        if "token_embd.weight" not in f.tensors:
            raise CheckpointError(f"[export_hf] {gguf_path} has no token_embd.weight")
        n_head = int(md[f"{arch}.attention.head_count"])
        n_head_kv = int(md.get(f"{arch}.attention.head_count_kv", n_head))
        permuted = needs_qk_permutation(arch)

        def produce(name):
            def make():
                w = f.tensor(name).dequantize()
                if permuted and name.endswith((".attn_q.weight", ".attn_q.bias")):
                    w = unpermute_qk(w, n_head, n_head)
                elif permuted and name.endswith((".attn_k.weight", ".attn_k.bias")):
                    w = unpermute_qk(w, n_head, n_head_kv)
                return w
            return make

        entries = [SafetensorsEntry(gguf_to_hf_name(name), st_dtype, info.shape, produce(name))
                   for name, info in f.tensors.items() if name != "rope_freqs.weight"]
        vocab_size = f.tensors["token_embd.weight"].shape[0]
        config = gguf_metadata_to_config(md, vocab_size=vocab_size, tied_embeddings="output.weight" not in f.tensors,
                                         torch_dtype=torch_dtype,
                                         attention_bias=any(n.endswith(".attn_q.bias") for n in f.tensors))
        if "rope_freqs.weight" in f.tensors:  # Llama 3.1+: the factors come from rope_scaling
            config["rope_scaling"] = llama3_rope_scaling(f.array("rope_freqs.weight"), md)
        files = gguf_metadata_to_tokenizer_files(md)
        config.update(files["generation_config.json"])  # bos/eos/pad ids, as HF configs carry them
        written = write_hf_checkpoint(out_dir, config, entries, files, max_shard_bytes=max_shard_bytes,
                                      progress=progress)
    return {"input": gguf_path, "output": out_dir, "dtype": dtype, "architecture": arch,
            "tensors": len(entries), "files": written}
