"""Hugging Face Llama-family checkpoints: read them lazily, write them, and map them to GGUF.

    from lowbit.io.hf import open_hf_checkpoint, hf_to_gguf_name, permute_qk

    ckpt = open_hf_checkpoint("SmolLM2-135M-Instruct/")   # config.json + (sharded) safetensors
    ckpt.config["num_attention_heads"]                     # 9
    for name in ckpt.tensor_names:                         # HF names, file order
        w = ckpt.array(name)                               # float32, one tensor in memory at a time
        gguf_name = hf_to_gguf_name(name)                  # 'blk.0.attn_q.weight' (None: not converted)

The conventions are those of llama.cpp's convert_hf_to_gguf.py (LlamaModel, Qwen2Model):

- names: model.embed_tokens -> token_embd, model.layers.N.self_attn.q_proj -> blk.N.attn_q, ... ;
- Q and K rows are permuted for llama (not qwen2): HF keeps each head's rotary pairs as two halves
  (x[:d/2], x[d/2:]), GGUF as interleaved pairs (x0, x1), (x2, x3), ..., which is what ggml's
  "normal" RoPE rotates. permute_qk goes HF -> GGUF, unpermute_qk back;
- config.json <-> {arch}.* metadata keys (config_to_gguf_metadata / gguf_metadata_to_config).

Pickled weights (.bin, .pt, .pth, .ckpt) are refused, never unpickled: loading a pickle runs code.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from typing import Any, Callable

import numpy as np

from ..errors import CheckpointError
from .gguf import GGUFValue
from .safetensors import DTYPES, SafetensorsEntry, SafetensorsFile, open_safetensors, write_safetensors

__all__ = ["ARCHITECTURES", "HFCheckpoint", "open_hf_checkpoint", "hf_to_gguf_name", "gguf_to_hf_name",
           "permute_qk", "unpermute_qk", "needs_qk_permutation", "config_to_gguf_metadata",
           "gguf_metadata_to_config", "write_hf_checkpoint", "read_json"]

log = logging.getLogger(__name__)

# HF architectures lowbit converts -> GGUF general.architecture (llama.cpp registers Mistral as llama)
ARCHITECTURES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}
# GGUF architecture -> (HF architecture, HF model_type) written by export
HF_ARCHITECTURE = {"llama": ("LlamaForCausalLM", "llama"), "qwen2": ("Qwen2ForCausalLM", "qwen2")}
# Architectures whose Q/K rows llama.cpp's converter permutes (LlamaModel.undo_permute)
_PERMUTED = {"llama"}

_MAX_JSON_BYTES = 64 << 20  # config/tokenizer files; a 256k-token tokenizer.json is ~20 MB
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")

# -------------------------------------------------------------------------------------------------
# Tensor names

_GLOBAL_NAMES = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
_LAYER_NAMES = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_GGUF_GLOBAL = {v: k for k, v in _GLOBAL_NAMES.items()}
_GGUF_LAYER = {v: k for k, v in _LAYER_NAMES.items()}
_HF_LAYER_RE = re.compile(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)")
_GGUF_LAYER_RE = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|bias)")
# Tensors the converter drops: buffers recomputed at load time
_SKIPPED = (".rotary_emb.inv_freq", ".attention.masked_bias", ".attention.bias")


def hf_to_gguf_name(name: str) -> str | None:
    """GGUF name of an HF Llama/Mistral/Qwen2 tensor; None for buffers llama.cpp's converter drops.

    Raises CheckpointError for a tensor it cannot map (llama.cpp's converter fails there too).
    """
    if name.endswith(_SKIPPED):
        return None
    base, _, suffix = name.rpartition(".")
    if base in _GLOBAL_NAMES and suffix == "weight":
        return f"{_GLOBAL_NAMES[base]}.weight"
    m = _HF_LAYER_RE.fullmatch(name)
    if m and m.group(2) in _LAYER_NAMES:
        return f"blk.{int(m.group(1))}.{_LAYER_NAMES[m.group(2)]}.{m.group(3)}"
    raise CheckpointError(f"[hf_to_gguf_name] cannot map tensor {name!r} to a GGUF name (not a Llama-family tensor)")


def gguf_to_hf_name(name: str) -> str:
    """HF name of a GGUF Llama-family tensor (inverse of hf_to_gguf_name)."""
    base, _, suffix = name.rpartition(".")
    if base in _GGUF_GLOBAL and suffix == "weight":
        return f"{_GGUF_GLOBAL[base]}.weight"
    m = _GGUF_LAYER_RE.fullmatch(name)
    if m and m.group(2) in _GGUF_LAYER:
        return f"model.layers.{int(m.group(1))}.{_GGUF_LAYER[m.group(2)]}.{m.group(3)}"
    raise CheckpointError(f"[gguf_to_hf_name] no Hugging Face name for GGUF tensor {name!r}")


# -------------------------------------------------------------------------------------------------
# Q/K RoPE permutation


def needs_qk_permutation(gguf_arch: str) -> bool:
    """Whether llama.cpp's converter permutes Q/K rows for this GGUF architecture."""
    return gguf_arch in _PERMUTED


def _heads(w: np.ndarray, n_head: int, op: str) -> int:
    if n_head < 1 or w.shape[0] % (2 * n_head):
        raise ValueError(f"[{op}] {w.shape[0]} rows do not split into {n_head} heads of rotary pairs")
    return w.shape[0] // n_head // 2


def permute_qk(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """HF -> GGUF row order of a q_proj / k_proj weight or bias (rows first), as llama.cpp permutes.

    Within each head, HF's rows [first half | second half] become interleaved pairs. For k_proj
    pass n_head_kv: the heads of K are the KV heads.
    """
    if n_head_kv is not None and n_head_kv != n_head:
        n_head = n_head_kv
    half = _heads(w, n_head, "permute_qk")
    return w.reshape(n_head, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """GGUF -> HF row order: the inverse of permute_qk."""
    if n_head_kv is not None and n_head_kv != n_head:
        n_head = n_head_kv
    half = _heads(w, n_head, "unpermute_qk")
    return w.reshape(n_head, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# -------------------------------------------------------------------------------------------------
# Reading a checkpoint directory


def read_json(path: str, what: str | None = None) -> Any:
    """A JSON file of bounded size, errors as CheckpointError naming the file."""
    what = what or os.path.basename(path)
    size = os.path.getsize(path)
    if size > _MAX_JSON_BYTES:
        raise CheckpointError(f"[read_json] {path}: {what} is {size} bytes, more than {_MAX_JSON_BYTES}")
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"[read_json] {path}: {what} is not valid JSON ({str(e)[:200]})") from None


def _safe_member(directory: str, name: Any, what: str) -> str:
    """A file name from an untrusted index, which must stay inside the checkpoint directory."""
    if not isinstance(name, str) or not name or os.path.basename(name) != name or name in (".", ".."):
        raise CheckpointError(f"[open_hf_checkpoint] {what}: {name!r} is not a plain file name in {directory}")
    return os.path.join(directory, name)


class HFCheckpoint:
    """A Hugging Face checkpoint directory with safetensors weights, opened lazily.

    config: config.json (dict). tensor_names: every tensor, in shard and file order. array(name):
    float32; raw(name): stored values; dtype(name), shape(name). tokenizer_json / tokenizer_config
    / generation_config: parsed dicts or None. Every shard's header is validated at open.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.isdir(self.path):
            raise CheckpointError(f"[open_hf_checkpoint] {self.path} is not a directory")
        cfg = os.path.join(self.path, "config.json")
        if not os.path.isfile(cfg):
            raise CheckpointError(f"[open_hf_checkpoint] {self.path} has no config.json")
        self.config: dict = read_json(cfg)
        if not isinstance(self.config, dict):
            raise CheckpointError(f"[open_hf_checkpoint] {cfg} is not a JSON object")
        self._files: dict[str, SafetensorsFile] = {}
        self._where: dict[str, SafetensorsFile] = {}
        for shard in self._shard_names():
            f = open_safetensors(shard)
            self._files[shard] = f
            for name in sorted(f.tensors):  # llama.cpp's converter: shards sorted, names sorted in each
                if name in self._where:
                    raise CheckpointError(f"[open_hf_checkpoint] tensor {name!r} is in both "
                                          f"{self._where[name].path} and {shard}")
                self._where[name] = f
        self.tensor_names: list[str] = list(self._where)
        self._check_index()
        self.tokenizer_json = self._optional_json("tokenizer.json")
        self.tokenizer_config = self._optional_json("tokenizer_config.json")
        self.generation_config = self._optional_json("generation_config.json")

    def _shard_names(self) -> list[str]:
        files = sorted(os.listdir(self.path))
        index = os.path.join(self.path, "model.safetensors.index.json")
        if os.path.isfile(index):
            self.index = read_json(index)
            wm = self.index.get("weight_map") if isinstance(self.index, dict) else None
            if not isinstance(wm, dict) or not wm:
                raise CheckpointError(f"[open_hf_checkpoint] {index} has no weight_map")
            shards = []
            for name, file in wm.items():
                p = _safe_member(self.path, file, f"weight_map[{name!r}]")
                if p not in shards:
                    shards.append(p)
            for p in shards:
                if not os.path.isfile(p):
                    raise CheckpointError(f"[open_hf_checkpoint] shard {p} named by {index} is missing")
            return sorted(shards)
        self.index = None
        shards = [os.path.join(self.path, f) for f in files if f.endswith(".safetensors")]
        if shards:
            return shards
        pickles = [f for f in files if f.endswith(_PICKLE_SUFFIXES)]
        if pickles:
            raise CheckpointError(
                f"[open_hf_checkpoint] {self.path} holds only pickled weights ({', '.join(pickles[:3])}); lowbit "
                f"never unpickles (loading a pickle can run arbitrary code). Convert them to safetensors "
                f"first with a tool you trust, e.g. transformers' save_pretrained(safe_serialization=True)")
        raise CheckpointError(f"[open_hf_checkpoint] {self.path} has no *.safetensors weights")

    def _check_index(self):
        if self.index is None:
            return
        for name, file in self.index["weight_map"].items():
            f = self._where.get(name)
            if f is None or os.path.basename(f.path) != file:
                raise CheckpointError(f"[open_hf_checkpoint] index says tensor {name!r} is in {file}, "
                                      f"but {'it is in ' + os.path.basename(f.path) if f else 'no shard has it'}")

    def _optional_json(self, name: str):
        p = os.path.join(self.path, name)
        if not os.path.isfile(p):
            return None
        v = read_json(p)
        if not isinstance(v, dict):
            raise CheckpointError(f"[open_hf_checkpoint] {p} is not a JSON object")
        return v

    def file_path(self, name: str) -> str:
        return os.path.join(self.path, name)

    def dtype(self, name: str) -> str:
        return self._file(name).tensors[name].dtype

    def shape(self, name: str) -> tuple:
        return self._file(name).tensors[name].shape

    def array(self, name: str) -> np.ndarray:
        return self._file(name).array(name)

    def raw(self, name: str) -> np.ndarray:
        return self._file(name).raw(name)

    def _file(self, name: str) -> SafetensorsFile:
        f = self._where.get(name)
        if f is None:
            raise KeyError(f"[HFCheckpoint] no tensor named {name!r} in {self.path}")
        return f

    def close(self):
        for f in self._files.values():
            f.close()

    def __enter__(self) -> HFCheckpoint:
        return self

    def __exit__(self, *exc):
        self.close()


def open_hf_checkpoint(path) -> HFCheckpoint:
    """Open an HF checkpoint directory (config.json + single or sharded safetensors)."""
    return HFCheckpoint(path)


# -------------------------------------------------------------------------------------------------
# config.json <-> GGUF metadata


def _need_int(config: dict, key: str, lo: int = 1) -> int:
    v = config.get(key)
    if type(v) is not int or v < lo:
        raise CheckpointError(f"[config_to_gguf_metadata] config.json {key} must be an integer >= {lo}, got {v!r}")
    return v


def _need_float(config: dict, key: str) -> float:
    v = config.get(key)
    if type(v) not in (int, float) or not np.isfinite(v):
        raise CheckpointError(f"[config_to_gguf_metadata] config.json {key} must be a finite number, got {v!r}")
    return float(v)


def gguf_architecture(config: dict) -> str:
    """GGUF architecture for config.json's architectures[0]; CheckpointError if lowbit cannot convert it."""
    archs = config.get("architectures") or [None]
    arch = archs[0] if isinstance(archs, list) else None
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"[convert] architecture {arch!r} is not supported; lowbit converts "
                              f"{', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch]


def _rope_parameters(config: dict) -> dict:
    rope = config.get("rope_parameters", config.get("rope_scaling")) or {}
    return rope.get("full_attention", rope) if isinstance(rope, dict) else {}


def llama3_rope_factors(config: dict) -> np.ndarray | None:
    """The rope_freqs tensor (head_dim/2,) f32 llama.cpp's converter adds for Llama 3.1+ rope scaling.

    Written in float32 step by step as the converter computes it in torch (each Python float enters
    an operation as a float32), so the factors are bit-identical. None if the config has no llama3
    scaling.
    """
    rope = _rope_parameters(config)
    if str(rope.get("rope_type", rope.get("type", ""))).lower() != "llama3":
        return None
    base = rope.get("rope_theta", config.get("rope_theta", 10000.0))
    dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    f32 = np.float32
    # torch's pow(scalar, float32 tensor) rounds like float64 pow in every case checked (head_dim 64 and
    # 128 for several bases: all; other head dims: 1 ulp apart in ~1% of entries); numpy's float32
    # pow is further off. torch computes scalar / tensor as scalar * (1 / tensor), so does this code.
    exps = np.arange(0, dim, 2, dtype=np.float32) / f32(dim)
    freqs = f32(1) / (np.float64(base) ** exps.astype(np.float64)).astype(np.float32)
    factor = rope.get("factor", 8.0)
    low, high = rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old_ctx = rope.get("original_max_position_embeddings", 8192)
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high  # Python floats, as in the converter
    out = []
    for freq in freqs:
        wavelen = f32(2 * np.pi) * (f32(1) / freq)
        if wavelen < f32(high_wavelen):
            out.append(f32(1))
        elif wavelen > f32(low_wavelen):
            out.append(f32(factor))
        else:
            smooth = (f32(old_ctx) * (f32(1) / wavelen) - f32(low)) / f32(high - low)
            out.append(f32(1) / ((f32(1) - smooth) / f32(factor) + smooth))
    return np.array(out, dtype=np.float32)


def llama3_rope_scaling(factors: np.ndarray, md: dict) -> dict:
    """config.json rope_scaling whose llama3_rope_factors reproduce a GGUF's rope_freqs exactly.

    The factors do not name their parameters; the published Llama 3.1 / 3.2 settings (low 1, high 4,
    original context 8192, factor = the largest factor) are tried and must give the same bits.
    """
    arch = md.get("general.architecture")
    n_embd, n_head = md[f"{arch}.embedding_length"], md[f"{arch}.attention.head_count"]
    head_dim = md.get(f"{arch}.rope.dimension_count", n_embd // n_head)
    rope = {"rope_type": "llama3", "factor": float(factors.max()), "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    cfg = {"hidden_size": n_embd, "num_attention_heads": n_head, "head_dim": head_dim,
           "rope_theta": float(np.float32(md.get(f"{arch}.rope.freq_base", 10000.0))), "rope_scaling": rope}
    again = llama3_rope_factors(cfg)
    if again is None or again.shape != factors.shape or not np.array_equal(again, factors):
        raise CheckpointError("[export_hf] rope_freqs.weight does not match Llama 3.1/3.2 rope scaling "
                              "(factor, low 1, high 4, original context 8192); cannot write rope_scaling")
    return rope


# transformers' defaults for keys a config.json may leave out (LlamaConfig, MistralConfig, Qwen2Config)
_CONFIG_DEFAULTS = {
    "LlamaForCausalLM": {"max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "rope_theta": 10000.0},
    "MistralForCausalLM": {"max_position_embeddings": 4096 * 32, "rms_norm_eps": 1e-6, "rope_theta": 10000.0},
    "Qwen2ForCausalLM": {"max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 10000.0},
}


def config_to_gguf_metadata(config: dict, file_type: int) -> dict[str, GGUFValue]:
    """{arch}.* keys (and general.file_type) from config.json, as llama.cpp's converter writes them.

    Order and types follow TextModel.set_gguf_parameters then LlamaModel's additions.
    """
    arch = gguf_architecture(config)
    if isinstance(config.get("text_config"), dict):
        config = {**config, **config["text_config"]}
    # llama.cpp's converter reads config.json through transformers' AutoConfig, which fills defaults
    config = {**_CONFIG_DEFAULTS[config["architectures"][0]], **config}
    if config.get("num_key_value_heads") is None:
        config["num_key_value_heads"] = _need_int(config, "num_attention_heads")
    if config.get("vocab_size") is not None:
        _need_int(config, "vocab_size")
    if arch == "llama" and config.get("head_dim") is None:
        config["head_dim"] = _need_int(config, "hidden_size") // _need_int(config, "num_attention_heads")
    u32, f32 = "uint32", "float32"
    md: dict[str, GGUFValue] = {}
    md[f"{arch}.block_count"] = GGUFValue(_need_int(config, "num_hidden_layers"), u32)
    for key in ("max_position_embeddings", "n_ctx", "n_positions", "max_length"):
        if config.get(key) is not None:
            md[f"{arch}.context_length"] = GGUFValue(_need_int(config, key), u32)
            break
    md[f"{arch}.embedding_length"] = GGUFValue(_need_int(config, "hidden_size"), u32)
    md[f"{arch}.feed_forward_length"] = GGUFValue(_need_int(config, "intermediate_size"), u32)
    n_head = _need_int(config, "num_attention_heads")
    md[f"{arch}.attention.head_count"] = GGUFValue(n_head, u32)
    md[f"{arch}.attention.head_count_kv"] = GGUFValue(_need_int(config, "num_key_value_heads"), u32)
    rope = config.get("rope_parameters", config.get("rope_scaling")) or {}
    if not isinstance(rope, dict):
        raise CheckpointError(f"[config_to_gguf_metadata] rope_scaling must be an object, got {rope!r}")
    rope = dict(rope)
    if "rope_theta" not in rope and config.get("rope_theta") is not None:
        rope["rope_theta"] = config["rope_theta"]
    rope_type = rope.get("rope_type", rope.get("type"))
    if rope_type is not None:
        factor = rope.get("factor")
        if rope_type == "linear" and factor is not None:
            md[f"{arch}.rope.scaling.type"] = GGUFValue("linear", "string")
            md[f"{arch}.rope.scaling.factor"] = GGUFValue(float(factor), f32)
        elif rope_type == "yarn" and factor is not None:
            md[f"{arch}.rope.scaling.type"] = GGUFValue("yarn", "string")
            md[f"{arch}.rope.scaling.factor"] = GGUFValue(float(factor), f32)
            md[f"{arch}.rope.scaling.original_context_length"] = GGUFValue(
                _need_int(rope, "original_max_position_embeddings"), u32)
        elif rope_type not in ("default", "llama3"):  # llama3 is the rope_freqs tensor (llama3_rope_factors)
            raise CheckpointError(f"[config_to_gguf_metadata] rope scaling type {rope_type!r} is not supported "
                                  f"(lowbit converts linear, yarn and llama3)")
    if rope.get("rope_theta") is not None:
        md[f"{arch}.rope.freq_base"] = GGUFValue(_need_float(rope, "rope_theta"), f32)
    for key in ("rms_norm_eps", "norm_eps"):
        if config.get(key) is not None:
            md[f"{arch}.attention.layer_norm_rms_epsilon"] = GGUFValue(_need_float(config, key), f32)
            break
    if config.get("head_dim") is not None:
        md[f"{arch}.attention.key_length"] = GGUFValue(_need_int(config, "head_dim"), u32)
        md[f"{arch}.attention.value_length"] = GGUFValue(_need_int(config, "head_dim"), u32)
    md["general.file_type"] = GGUFValue(int(file_type), u32)
    if arch == "llama":
        md[f"{arch}.vocab_size"] = GGUFValue(_need_int(config, "vocab_size"), u32)
        head_dim = config.get("head_dim") or config["hidden_size"] // n_head
        md[f"{arch}.rope.dimension_count"] = GGUFValue(int(head_dim), u32)
    return md


def _short_float(x) -> float:
    """A GGUF float32 as the shortest decimal that reads back to the same float32 (1e-05, not 9.99...e-06)."""
    return float(repr(np.float32(x)).removeprefix("np.float32(").removesuffix(")"))


def gguf_metadata_to_config(md: dict, *, vocab_size: int, tied_embeddings: bool, torch_dtype: str,
                            attention_bias: bool = False) -> dict:
    """config.json for transformers from GGUF metadata (plain values, as GGUFFile.metadata holds them).

    attention_bias: the GGUF has attn_q/k/v biases (llama only; qwen2 always has them)."""
    arch = md.get("general.architecture")
    if arch not in HF_ARCHITECTURE:
        raise CheckpointError(f"[export_hf] GGUF architecture {arch!r} is not supported; lowbit exports "
                              f"{', '.join(HF_ARCHITECTURE)}")
    hf_arch, model_type = HF_ARCHITECTURE[arch]

    def get(key, default=None, required=True):
        v = md.get(f"{arch}.{key}", default)
        if v is None and required:
            raise CheckpointError(f"[export_hf] GGUF metadata lacks {arch}.{key}")
        return v

    n_embd = int(get("embedding_length"))
    n_head = int(get("attention.head_count"))
    cfg: dict[str, Any] = {
        "architectures": [hf_arch],
        "model_type": model_type,
        "hidden_size": n_embd,
        "intermediate_size": int(get("feed_forward_length")),
        "num_hidden_layers": int(get("block_count")),
        "num_attention_heads": n_head,
        "num_key_value_heads": int(get("attention.head_count_kv", n_head)),
        "max_position_embeddings": int(get("context_length", 2048)),
        "rms_norm_eps": _short_float(get("attention.layer_norm_rms_epsilon", 1e-6)),
        "rope_theta": _short_float(get("rope.freq_base", 10000.0)),
        "vocab_size": int(vocab_size),
        "tie_word_embeddings": bool(tied_embeddings),
        "hidden_act": "silu",
        "torch_dtype": torch_dtype,
        "use_cache": True,
    }
    key_length = get("attention.key_length", None, required=False)
    rope_dim = get("rope.dimension_count", None, required=False)
    head_dim = int(key_length or rope_dim or n_embd // n_head)
    if key_length is not None or head_dim != n_embd // n_head:
        cfg["head_dim"] = head_dim
    if rope_dim is not None and int(rope_dim) != head_dim:
        raise CheckpointError(f"[export_hf] partial rotary embeddings (rope.dimension_count={rope_dim}) "
                              f"are not supported")
    scaling = get("rope.scaling.type", None, required=False)
    if scaling in ("linear", "yarn"):
        cfg["rope_scaling"] = {"rope_type": scaling, "factor": float(np.float32(get("rope.scaling.factor")))}
        if scaling == "yarn":
            cfg["rope_scaling"]["original_max_position_embeddings"] = int(get("rope.scaling.original_context_length"))
    elif scaling not in (None, "none"):
        raise CheckpointError(f"[export_hf] rope scaling {scaling!r} is not supported")
    if model_type == "llama":
        cfg.update(attention_bias=bool(attention_bias), mlp_bias=False)
    if model_type == "qwen2":
        cfg.update(use_sliding_window=False)
    return cfg


# -------------------------------------------------------------------------------------------------
# Writing a checkpoint directory

DEFAULT_SHARD_BYTES = 2_000_000_000


def _shards(entries: list[SafetensorsEntry], max_shard_bytes: int) -> list[list[SafetensorsEntry]]:
    shards: list[list[SafetensorsEntry]] = [[]]
    size = 0
    for e in entries:
        n = int(np.prod(e.shape, dtype=np.int64)) * np.dtype(DTYPES[e.dtype]).itemsize
        if shards[-1] and size + n > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(e)
        size += n
    return shards


def write_hf_checkpoint(out_dir, config: dict, entries: list[SafetensorsEntry], json_files: dict[str, dict],
                        *, max_shard_bytes: int = DEFAULT_SHARD_BYTES,
                        progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Write config.json, the other JSON files and the weights (sharded with an index past max_shard_bytes).

    Everything is written into a temporary directory next to out_dir, which is renamed to out_dir at
    the end: a failed run leaves nothing at out_dir. out_dir must not exist or be an empty directory.
    Returns the names of the files written.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise CheckpointError(f"[write_hf_checkpoint] {out_dir} exists and is not an empty directory; "
                              f"choose a new directory")
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", suffix=".tmp", dir=parent)
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the checkpoint is an ordinary directory
        written = []
        for name, obj in {"config.json": config, **json_files}.items():
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=2, ensure_ascii=False)
                f.write("\n")
            written.append(name)
        shards = _shards(entries, max_shard_bytes)
        total = len(entries)
        done = 0
        weight_map = {}
        total_size = 0

        def counted(e: SafetensorsEntry) -> SafetensorsEntry:
            def produce():
                nonlocal done
                arr = e.produce()
                done += 1
                if progress:
                    progress(done, total)
                return arr
            return e._replace(produce=produce)

        for i, shard in enumerate(shards):
            fname = "model.safetensors" if len(shards) == 1 else f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            write_safetensors(os.path.join(tmp, fname), [counted(e) for e in shard], metadata={"format": "pt"})
            total_size += sum(int(np.prod(e.shape, dtype=np.int64)) * np.dtype(DTYPES[e.dtype]).itemsize for e in shard)
            weight_map.update({e.name: fname for e in shard})
            written.append(fname)
        if len(shards) > 1:
            with open(os.path.join(tmp, "model.safetensors.index.json"), "w", encoding="utf-8") as f:
                json.dump({"metadata": {"total_size": total_size}, "weight_map": weight_map}, f, indent=2)
            written.append("model.safetensors.index.json")
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)  # empty, checked above
        os.replace(tmp, out_dir)
        return written
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
