"""Writing a calibrated model: a GGUF llama.cpp runs, or a Hugging Face checkpoint in the GPTQ or the
AutoAWQ GEMM layout (packing in lowbit.io.gptq_awq; names, Q/K order, config and tokenizer files from
lowbit.io.hf).

GGUF: a linear on a group grid that a GGUF block type represents exactly is written into that type
byte for byte: symmetric 4-bit groups of 32 (w = d * (q - 8)) are Q4_0, symmetric 8-bit groups of
32 (w = d * (q - 128)) are Q8_0, and the "min" grid (w = d * q + m, d and m float16) is Q4_1. Linears
that are already GGUF tensors (GPTQ straight into a GGUF type) are written as they are. Everything
else (embeddings, output) keeps the source file's tensors; AWQ's rescaled norms are written as f32.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import gguf
import numpy as np

from .. import ops
from ..io.gguf import GGUFValue, write_gguf
from .block import GGUF_NAME, LINEARS
from .grid import GridSpec, QuantizedLinear
from .sequential import CalibratedModel

FILE_TYPE = {"q4_0": "MOSTLY_Q4_0", "q4_1": "MOSTLY_Q4_1", "q8_0": "MOSTLY_Q8_0", "q5_0": "MOSTLY_Q5_0",
             "q5_1": "MOSTLY_Q5_1", "q2_k": "MOSTLY_Q2_K", "q3_k": "MOSTLY_Q3_K_M", "q4_k": "MOSTLY_Q4_K_M",
             "q5_k": "MOSTLY_Q5_K_M", "q6_k": "MOSTLY_Q6_K", "iq4_nl": "MOSTLY_IQ4_NL", "iq4_xs": "MOSTLY_IQ4_XS"}


def exact_gguf_type(spec: GridSpec) -> str | None:
    """The GGUF type whose blocks are exactly this grid, or None."""
    if spec.group_size != 32:
        return None
    if spec.style == "min":
        return "q4_1" if spec.bits == 4 else None
    if spec.sym:
        return {4: "q4_0", 8: "q8_0"}.get(spec.bits)
    return None


def grid_to_gguf(ql: QuantizedLinear) -> ops.QuantizedTensor:
    """Encode a group-32 grid as GGUF blocks (Q4_0 / Q4_1 / Q8_0), bytes built from q, scales, zeros."""
    qtype = exact_gguf_type(ql.spec)
    n, k = ql.q.shape
    if qtype is None:
        raise ValueError(f"[export] {ql.spec} has no exact GGUF block type")
    if not np.array_equal(ql.g_idx, np.arange(k) // 32):
        raise ValueError("[export] GGUF blocks need g_idx = column // 32 (act-order needs static groups)")
    nb = k // 32
    q = ql.q.reshape(n, nb, 32)
    d = ql.scales.astype(np.float16)
    if qtype == "q8_0":
        blk = np.zeros((n, nb), [("d", "<f2"), ("qs", "i1", 32)])
        blk["qs"] = (q.astype(np.int16) - 128).astype(np.int8)
    else:
        half = q[..., :16] | (q[..., 16:] << 4)  # ggml: low nibbles hold values 0..15, high 16..31
        if qtype == "q4_0":
            if not np.all(ql.zeros == 8):
                raise ValueError("[export] Q4_0 needs zero point 8")
            blk = np.zeros((n, nb), [("d", "<f2"), ("qs", "u1", 16)])
        else:
            blk = np.zeros((n, nb), [("d", "<f2"), ("m", "<f2"), ("qs", "u1", 16)])
            blk["m"] = ql.zeros.astype(np.float16)
        blk["qs"] = half
    blk["d"] = d
    return ops.QuantizedTensor(blk.view(np.uint8).reshape(-1), qtype, (n, k))


def _gguf_tensor(q) -> ops.QuantizedTensor:
    return q if isinstance(q, ops.QuantizedTensor) else grid_to_gguf(q)


def _fresh_dir(out_dir: str) -> tuple[str, str]:
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise FileExistsError(f"[export] {out_dir} exists and is not an empty directory; choose a new directory")
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    return out_dir, tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", suffix=".tmp", dir=parent)


def write_gguf_dir(res: CalibratedModel, out_dir: str, filename: str = "model.gguf") -> str:
    """OUT/model.gguf with every block linear in its GGUF type; returns the file's path. Nothing is left
    at out_dir when writing fails."""
    src = res.source_file
    new: dict[str, object] = {}
    qtypes = set()
    for i, (qs, fl) in enumerate(zip(res.quantized, res.layers)):
        for name in LINEARS:
            t = _gguf_tensor(qs[name])
            qtypes.add(t.qtype)
            new[f"blk.{i}.{GGUF_NAME[name]}.weight"] = t
        new[f"blk.{i}.attn_norm.weight"] = fl.attn_norm.astype(np.float32)
        new[f"blk.{i}.ffn_norm.weight"] = fl.ffn_norm.astype(np.float32)
        for b, gname in (("bq", "attn_q"), ("bk", "attn_k"), ("bv", "attn_v")):
            if getattr(fl, b) is not None:
                new[f"blk.{i}.{gname}.bias"] = getattr(fl, b).astype(np.float32)
    def kept(name):
        t = src.tensor(name)
        if t.qtype == "f32" and len(t.shape) == 2:  # an HF source came in as f32: embeddings as f16
            return t.dequantize().astype(np.float16)
        return t

    tensors = [(name, new[name] if name in new else kept(name)) for name in src.tensors]
    md = dict(src.typed_metadata)
    if len(qtypes) == 1:
        md["general.file_type"] = GGUFValue(int(gguf.LlamaFileType[FILE_TYPE[qtypes.pop()]]), "uint32")
    out_dir, tmp = _fresh_dir(out_dir)
    try:
        os.chmod(tmp, 0o755)
        write_gguf(os.path.join(tmp, filename), md, tensors)
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return os.path.join(out_dir, filename)


HF_LINEAR = {"wq": "self_attn.q_proj", "wk": "self_attn.k_proj", "wv": "self_attn.v_proj",
             "wo": "self_attn.o_proj", "w_gate": "mlp.gate_proj", "w_up": "mlp.up_proj", "w_down": "mlp.down_proj"}


def quantization_config(res: CalibratedModel, layout: str) -> dict:
    """The quantization_config block transformers / optimum / vLLM read (and quantize_config.json)."""
    info = res.info
    if layout == "awq":
        return {"quant_method": "awq", "bits": info["bits"], "group_size": info["group_size"],
                "zero_point": info["zero_point"], "version": "gemm", "modules_to_not_convert": None}
    return {"quant_method": "gptq", "bits": info["bits"], "group_size": info["group_size"],
            "desc_act": bool(info.get("act_order", False)), "sym": bool(info["sym"]),
            "static_groups": bool(info.get("static_groups", False)), "damp_percent": info.get("damp", 0.01),
            "true_sequential": False, "checkpoint_format": "gptq", "lm_head": False}


def write_hf_dir(res: CalibratedModel, out_dir: str) -> list[str]:
    """A transformers checkpoint: GPTQ layout for GPTQ / RTN results, AutoAWQ GEMM layout for AWQ ones;
    embeddings, norms and lm_head as float16; config.json with quantization_config, tokenizer files.
    Returns the files written."""
    from ..io.gptq_awq import pack_awq, pack_gptq
    from ..io.hf import gguf_metadata_to_config, gguf_to_hf_name, needs_qk_permutation, unpermute_qk, write_hf_checkpoint
    from ..io.hf_tokenizer import gguf_metadata_to_tokenizer_files
    from ..io.safetensors import SafetensorsEntry

    layout = "awq" if res.info.get("method") == "awq" else "gptq"
    src, cfg = res.source_file, res.cfg
    md = src.metadata
    bits = res.info["bits"]
    permuted = needs_qk_permutation(md["general.architecture"])
    entries: list = []

    def add(name, dtype, arr):
        arr = np.ascontiguousarray(arr)
        entries.append(SafetensorsEntry(name, dtype, arr.shape, lambda a=arr: a))

    for i, (qs, fl) in enumerate(zip(res.quantized, res.layers)):
        p = f"model.layers.{i}."
        for name in LINEARS:
            ql = qs[name]
            if not isinstance(ql, QuantizedLinear) or ql.spec.style == "min":
                raise ValueError("[export] the hf format holds integer group grids (GPTQ / AWQ / RTN), "
                                 "not GGUF block types; use --format gguf")
            q, scales, zeros = ql.q, ql.scales, ql.zeros
            if permuted and name in ("wq", "wk"):  # back to HF's row order (rows are outputs)
                heads = (cfg.n_head, cfg.n_head) if name == "wq" else (cfg.n_head, cfg.n_head_kv)
                q, scales, zeros = (unpermute_qk(a, *heads) for a in (q, scales, zeros))
            packed = pack_awq(q, scales, zeros) if layout == "awq" else pack_gptq(q, scales, zeros, ql.g_idx, bits)
            for key, arr in packed.items():
                add(p + HF_LINEAR[name] + "." + key, {"scales": "F16"}.get(key, "I32"), arr)
        add(p + "input_layernorm.weight", "F16", fl.attn_norm)
        add(p + "post_attention_layernorm.weight", "F16", fl.ffn_norm)
        for b, proj in (("bq", "q_proj"), ("bk", "k_proj"), ("bv", "v_proj")):
            if getattr(fl, b) is not None:
                add(p + f"self_attn.{proj}.bias", "F16", getattr(fl, b))
    tied = "output.weight" not in src.tensors
    for name in ("token_embd.weight", "output_norm.weight", "output.weight"):
        if name in src.tensors:
            t = src.tensor(name)
            arr = t.dequantize() if isinstance(t, ops.QuantizedTensor) else np.asarray(t, np.float32)
            add(gguf_to_hf_name(name), "F16", arr)

    config = gguf_metadata_to_config(md, vocab_size=src.tensors["token_embd.weight"].shape[0],
                                     tied_embeddings=tied, torch_dtype="float16")
    files = gguf_metadata_to_tokenizer_files(md)
    config.update(files["generation_config.json"])
    qc = quantization_config(res, layout)
    config["quantization_config"] = qc
    if layout == "gptq":
        files["quantize_config.json"] = {k: v for k, v in qc.items() if k not in ("quant_method", "checkpoint_format")}
    return write_hf_checkpoint(out_dir, config, entries, files)
