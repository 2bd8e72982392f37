"""llama.cpp's quantization mixes (Q4_K_M, Q6_K, IQ4_XS, ...): a GGUF model in, a GGUF model out,
byte-identical to `llama-quantize IN OUT MIX` (llama_model_quantize of the same llama.cpp version).

    from lowbit.mixes import quantize_model
    report = quantize_model("model-f32.gguf", "model-q4_k_m.gguf", "Q4_K_M", threads=8)

A mix names a default block type and rules that give some tensors more bits: which layers of
attn_v / ffn_down, the output and token embeddings, fallbacks for rows that are not a multiple of
the block size. The rules below are llama.cpp's (src/llama-quant.cpp: tensor_allows_quantization,
llama_tensor_get_type_impl, tensor_type_fallback), restricted to the mixes lowbit has kernels for and
kept in llama.cpp's order, because the order is the specification: the counters that pick "which
attn_v is this" advance in the order llama.cpp visits tensors (by layer, then by name).

Every tensor is read, converted to float32 (dequantized, as llama.cpp does when requantizing) and
quantized by lowbit.quantize, one tensor at a time: the output is streamed through write_gguf's
LazyTensor, so memory stays near the largest tensor in float32 plus its quantized bytes. The file is
written under a temporary name and renamed at the end.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
from typing import Callable

import numpy as np

from . import ops
from .io.gguf import GGUFValue, LazyTensor, open_gguf, write_gguf

__all__ = ["MIXES", "Mix", "quantize_model", "plan_types"]

log = logging.getLogger(__name__)

GGML_QNT_VERSION = 2  # general.quantization_version that llama.cpp writes


@dataclasses.dataclass(frozen=True)
class Mix:
    name: str          # llama-quantize's name, e.g. "Q4_K_M"
    ftype: int         # llama_ftype, written as general.file_type
    default_type: str  # lowbit type name of most 2-D weights
    requires_imatrix: bool = False


MIXES: dict[str, Mix] = {m.name: m for m in [
    Mix("Q4_0", 2, "q4_0"), Mix("Q4_1", 3, "q4_1"), Mix("Q5_0", 8, "q5_0"), Mix("Q5_1", 9, "q5_1"),
    Mix("Q8_0", 7, "q8_0"),
    Mix("Q2_K", 10, "q2_k"), Mix("Q2_K_S", 21, "q2_k", requires_imatrix=True),
    Mix("Q3_K_S", 11, "q3_k"), Mix("Q3_K_M", 12, "q3_k"), Mix("Q3_K_L", 13, "q3_k"),
    Mix("Q4_K_S", 14, "q4_k"), Mix("Q4_K_M", 15, "q4_k"),
    Mix("Q5_K_S", 16, "q5_k"), Mix("Q5_K_M", 17, "q5_k"),
    Mix("Q6_K", 18, "q6_k"),
    Mix("IQ4_NL", 25, "iq4_nl"), Mix("IQ4_XS", 30, "iq4_xs"),
    Mix("F16", 1, "f16"), Mix("BF16", 32, "bf16"), Mix("F32", 0, "f32"),
    Mix("COPY", -1, ""),  # every tensor copied; general.file_type from the input (llama.cpp's only_copy)
]}

# llama.cpp's guess of a file's ftype from its most common tensor type, when general.file_type is absent
_FTYPE_OF_TYPE = {"f32": 0, "f16": 1, "bf16": 32, "q4_0": 2, "q4_1": 3, "q5_0": 8, "q5_1": 9, "q8_0": 7, "q2_k": 10,
                  "q3_k": 12, "q4_k": 15, "q5_k": 17, "q6_k": 18, "iq4_nl": 25, "iq4_xs": 30}
_FTYPE_GUESSED = 1024

# Where a 256-wide type cannot go (k not a multiple of 256), llama.cpp falls back to a 32-wide one.
_FALLBACK = {"iq4_xs": "iq4_nl", "q2_k": "q4_0", "q3_k": "q4_0", "q4_k": "q5_0", "q5_k": "q5_1", "q6_k": "q8_0"}

# Substrings of tensor names that llama.cpp never quantizes (small or special tensors of various archs).
_NEVER_QUANTIZED = (
    "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
    "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
    "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
    "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
    "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
    "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
    "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos",
    ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
)


def _ggml_n_dims(shape) -> int:
    """ggml_n_dims: trailing ggml dims of 1 do not count, so a (1, k) tensor is 1-D to llama.cpp."""
    ne = list(reversed(shape))
    for i in range(len(ne) - 1, 0, -1):
        if ne[i] > 1:
            return i + 1
    return 1


def _is_quantized(qtype: str) -> bool:
    return ops.type_info(qtype)["is_quantized"]


def _block(qtype: str) -> int:
    return ops.type_info(qtype)["block_size"]


def _category(name: str) -> str:
    """llama.cpp's tensor_get_category: broad roles by name, checked in this order."""
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for part, cat in (("attn_qkv.weight", "attn_qkv"), ("attn_kv_b.weight", "attn_kv_b"),
                      ("attn_v.weight", "attn_v"), ("attn_k.weight", "attn_k"), ("attn_q.weight", "attn_q"),
                      ("attn_output.weight", "attn_output"), ("ffn_up", "ffn_up"), ("ffn_gate", "ffn_gate"),
                      ("ffn_down", "ffn_down")):
        if part in name:
            return cat
    return "other"


def _is_attn_v(cat: str) -> bool:
    return cat in ("attn_v", "attn_qkv", "attn_kv_b")


def allows_quantization(name: str, n_dims: int, leave_output_tensor: bool = False) -> bool:
    """llama.cpp's tensor_allows_quantization: 2-D (and 3-D) tensors named *weight, minus norms and
    the special small tensors."""
    # llama.cpp tests `name.rfind("weight") == name.size() - 6`, which a 5-byte name also passes (both
    # sides are npos); kept, so that even such names get llama.cpp's answer
    ends_with_weight = name.endswith("weight") or len(name.encode("utf-8")) == 5
    if n_dims < 2 or not ends_with_weight:
        return False
    if leave_output_tensor and name == "output.weight":
        return False
    if name in ("position_embd.weight", "token_types.weight"):
        return False
    return not any(part in name for part in _NEVER_QUANTIZED)


def _layer_of(name: str) -> int:
    """The layer number sscanf(name, "blk.%d.") reads, -1 for tensors outside the blocks."""
    m = re.match(r"blk\.\s*([+-]?\d+)", name)
    return int(m.group(1)) if m else -1


def llama_tensor_order(names) -> list[str]:
    """The order llama.cpp's model loader keeps tensors in (weight_name_comparer): by layer number,
    tensors outside the blocks first, then by name. The output file lists tensors in this order."""
    return sorted(names, key=lambda n: (_layer_of(n), n.encode("utf-8")))


@dataclasses.dataclass
class _ModelFacts:
    arch: str
    n_layer: int
    n_gqa: int
    n_expert: int
    is_70b: bool

    @classmethod
    def from_metadata(cls, md: dict) -> "_ModelFacts":
        arch = md.get("general.architecture")
        if not isinstance(arch, str):
            raise ValueError("[quantize_model] the file has no general.architecture")

        def first(v, default):
            if isinstance(v, list):
                return v[0] if v else default
            return default if v is None else v

        n_layer = int(first(md.get(f"{arch}.block_count"), 0))
        n_head = int(first(md.get(f"{arch}.attention.head_count"), 0))
        n_head_kv = int(first(md.get(f"{arch}.attention.head_count_kv"), n_head))
        n_expert = int(first(md.get(f"{arch}.expert_count"), 0))
        gqa = n_head // n_head_kv if n_head_kv else 0
        # llama.cpp's only use of the model size in these rules: LLaMA-2-70B's 8-way shared attn_v
        # (its llama loader calls any 80-layer GQA model without 8 experts 70B)
        is_70b = arch == "llama" and n_layer == 80 and n_head != n_head_kv and n_expert != 8
        return cls(arch, n_layer, gqa, n_expert, is_70b)


class _TypeChooser:
    """llama_tensor_get_type for one mix: call choose() once per tensor, in llama_tensor_order."""

    def __init__(self, mix: Mix, facts: _ModelFacts, names: list[str], *, has_imatrix: bool, pure: bool,
                 output_tensor_type: str | None, token_embedding_type: str | None, leave_output_tensor: bool):
        self.mix, self.f = mix, facts
        self.has_imatrix, self.pure = has_imatrix, pure
        self.output_tensor_type, self.token_embedding_type = output_tensor_type, token_embedding_type
        self.leave_output_tensor = leave_output_tensor
        cats = [_category(n) for n in names]
        self.n_attention_wv = sum(_is_attn_v(c) for c in cats)
        self.has_tied_embeddings = "output" not in cats
        self.i_attention_wv = self.i_ffn_down = self.i_ffn_gate = self.i_ffn_up = 0
        self.n_fallback = 0

    def choose(self, name: str, shape: tuple, cur_type: str) -> str:
        if not allows_quantization(name, _ggml_n_dims(shape), self.leave_output_tensor):
            return cur_type
        cat = _category(name)
        if self.token_embedding_type and cat == "token_embd":
            return self.token_embedding_type
        if self.output_tensor_type and cat == "output":
            return self.output_tensor_type
        new_type = self.mix.default_type
        if _is_quantized(new_type):
            if not self.pure:
                new_type = self._rules(name, shape, cat, new_type)
            new_type = self._fallback(name, shape, new_type)
        return new_type

    def _fallback(self, name: str, shape: tuple, qtype: str) -> str:
        k = shape[-1]
        if k % _block(qtype) == 0:
            return qtype
        self.n_fallback += 1
        new = _FALLBACK.get(qtype)
        if new is None:
            if _block(qtype) > 32:
                raise ValueError(f"[quantize_model] no fallback type for {qtype} ({name}, k={k})")
            new = qtype
        if k % _block(new):
            new = "f16"  # not even a multiple of 32
        log.info("%s: k=%d is not a multiple of %s's block size, falling back to %s", name, k, qtype, new)
        return new

    def _use_more_bits(self, i_layer: int, n_layer: int) -> bool:
        return i_layer < n_layer // 8 or i_layer >= 7 * n_layer // 8 or (i_layer - n_layer // 8) % 3 == 2

    def _layer(self, counter: int, name: str) -> int:
        if self.f.n_expert > 1:  # expert tensors are not in layer order: read the layer from the name
            i = _layer_of(name)
            if not 0 <= i < self.f.n_layer:
                raise ValueError(f"[quantize_model] cannot tell the layer of {name}")
            return i
        return counter

    def _rules(self, name: str, shape: tuple, cat: str, new_type: str) -> str:
        """llama_tensor_get_type_impl, the branches reachable with lowbit's mixes."""
        m, f = self.mix.name, self.f
        falcon = f.arch == "falcon"
        if cat == "output" or (self.has_tied_embeddings and cat == "token_embd"):
            if self.output_tensor_type:
                return self.output_tensor_type
            if falcon or shape[-1] % _block(new_type):
                return "q8_0"
            return "q6_k" if new_type != "q8_0" else new_type
        if cat == "token_embd":
            return self.token_embedding_type or new_type
        if _is_attn_v(cat):
            if m == "Q2_K":
                new_type = "q4_k" if f.n_gqa >= 4 else "q3_k"
            elif m == "Q2_K_S" and f.n_gqa >= 4:
                new_type = "q4_k"
            elif m == "Q3_K_M":
                new_type = "q5_k" if self.i_attention_wv < 2 else "q4_k"
            elif m == "Q3_K_L":
                new_type = "q5_k"
            elif m in ("IQ4_NL", "IQ4_XS") and f.n_gqa >= 4:
                new_type = "q5_k"
            elif m in ("Q4_K_M", "Q5_K_M") and self._use_more_bits(self.i_attention_wv, self.n_attention_wv):
                new_type = "q6_k"
            elif m == "Q4_K_S" and self.i_attention_wv < 4:
                new_type = "q5_k"
            if f.is_70b and new_type in ("q3_k", "q4_k"):
                new_type = "q5_k"
            if f.n_expert == 8:
                new_type = "q8_0"
            self.i_attention_wv += 1
        elif cat == "attn_k":
            if f.n_expert == 8:
                new_type = "q8_0"
        elif cat == "ffn_down":
            i_layer, n_layer = self._layer(self.i_ffn_down, name), f.n_layer
            if m == "Q2_K":
                new_type = "q3_k"
            elif m == "Q2_K_S":
                if i_layer < n_layer // 8:
                    new_type = "q4_k"
            elif m == "Q3_K_M":
                new_type = ("q5_k" if i_layer < n_layer // 16 else
                            "q4_k" if not falcon or self._use_more_bits(i_layer, n_layer) else "q3_k")
            elif m == "Q3_K_L":
                new_type = "q4_k" if falcon else "q5_k"
            elif m == "Q4_K_M":
                if falcon:
                    new_type = ("q6_k" if i_layer < n_layer // 16 else
                                "q5_k" if self._use_more_bits(i_layer, n_layer) else "q4_k")
                elif self._use_more_bits(i_layer, n_layer):
                    new_type = "q6_k"
            elif i_layer < n_layer // 8 and m in ("IQ4_NL", "IQ4_XS") and not self.has_imatrix:
                new_type = "q5_k"
            elif m == "Q5_K_M" and self._use_more_bits(i_layer, n_layer):
                new_type = "q6_k"
            elif m == "Q4_K_S" and not falcon and i_layer < n_layer // 8:
                new_type = "q5_k"
            elif m in ("Q4_0", "Q5_0") and self.has_imatrix and i_layer < n_layer // 8:
                # llama.cpp guards the first ffn_down layers only when an imatrix is given
                new_type = "q4_1" if m == "Q4_0" else "q5_1"
            self.i_ffn_down += 1
        elif cat == "attn_output":
            if not falcon:
                if f.n_expert == 8:
                    if m in ("Q2_K", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ4_XS"):
                        new_type = "q5_k"
                elif m == "Q2_K":
                    new_type = "q3_k"
                elif m == "Q3_K_M":
                    new_type = "q4_k"
                elif m == "Q3_K_L":
                    new_type = "q5_k"
            elif m == "Q3_K_L":
                new_type = "q4_k"
        elif cat == "attn_qkv":
            pass  # handled with attn_v above (category_is_attn_v comes first in llama.cpp)
        elif cat == "ffn_gate":
            self._layer(self.i_ffn_gate, name)
            self.i_ffn_gate += 1
        elif cat == "ffn_up":
            self._layer(self.i_ffn_up, name)
            self.i_ffn_up += 1
        return new_type


def _check_mix(mix) -> Mix:
    if isinstance(mix, Mix):
        return mix
    if not isinstance(mix, str):
        raise TypeError(f"[quantize_model] mix must be a str such as 'Q4_K_M', got {type(mix).__name__}")
    m = MIXES.get(mix.upper())
    if m is None:
        raise ValueError(f"[quantize_model] unknown mix {mix!r}; expected one of: {', '.join(MIXES)}")
    return m


def _check_type(what: str, qtype) -> str | None:
    if qtype is None:
        return None
    if not isinstance(qtype, str):
        raise TypeError(f"[quantize_model] {what} must be a type name such as 'q8_0', got {type(qtype).__name__}")
    row = ops._type_table().get(qtype.lower())
    if row is None or row["is_activation"]:
        names = ", ".join(n for n, r in ops._type_table().items() if not r["is_activation"])
        raise ValueError(f"[quantize_model] {what} {qtype!r} is not a type lowbit writes; expected one of: {names}")
    return row["name"]


def plan_types(f, mix, *, has_imatrix: bool = False, pure: bool = False, output_tensor_type: str | None = None,
               token_embedding_type: str | None = None, leave_output_tensor: bool = False) -> dict[str, str]:
    """name -> output type for every tensor of an open GGUFFile, in the order llama.cpp writes them."""
    mix = _check_mix(mix)
    names = llama_tensor_order(f.tensors)
    if mix.name == "COPY":
        return {n: f.tensors[n].qtype for n in names}
    chooser = _TypeChooser(mix, _ModelFacts.from_metadata(f.metadata), names, has_imatrix=has_imatrix, pure=pure,
                           output_tensor_type=_check_type("output_tensor_type", output_tensor_type),
                           token_embedding_type=_check_type("token_embedding_type", token_embedding_type),
                           leave_output_tensor=leave_output_tensor)
    out = {}
    for n in names:
        t = f.tensors[n]
        out[n] = chooser.choose(n, t.shape, t.qtype)
        if out[n] != t.qtype and t.shape[-1] % _block(out[n]):
            raise ValueError(f"[quantize_model] {n}: k={t.shape[-1]} is not a multiple of {out[n]}'s block size "
                             f"{_block(out[n])} (set by an override)")
    return out


# --------------------------------------------------------------------------------------------------
# Writing


def _output_metadata(f, mix: Mix, imatrix) -> dict:
    """The input's keys in order, then general.quantization_version and general.file_type moved to the
    end (llama.cpp's gguf_set_val removes a key and appends it), then the imatrix keys llama-quantize adds."""
    drop = {"general.quantization_version", "general.file_type", "split.no", "split.count", "split.tensors.count"}
    md = {k: v for k, v in f.typed_metadata.items() if k not in drop}
    md["general.quantization_version"] = GGUFValue(GGML_QNT_VERSION, "uint32")
    md["general.file_type"] = GGUFValue(mix.ftype if mix.name != "COPY" else input_ftype(f), "uint32")
    if imatrix is not None:
        for k, v in imatrix.quantize_metadata().items():
            md.pop(k, None)
            md[k] = v
    return md


def input_ftype(f) -> int:
    """The llama_ftype llama.cpp's loader gives a file: general.file_type, else a guess from the most
    common tensor type (the first to reach the top count in llama.cpp's tensor order), marked guessed."""
    v = f.typed_metadata.get("general.file_type")
    if v is not None and v.type.name == "UINT32" and not v.is_array:
        return int(v.value)
    counts: dict[str, int] = {}
    best, type_max = 0, "f32"
    for n in llama_tensor_order(f.tensors):
        t = f.tensors[n].qtype
        counts[t] = counts.get(t, 0) + 1
        if best < counts[t]:
            best, type_max = counts[t], t
    return _FTYPE_OF_TYPE.get(type_max, 0) | _FTYPE_GUESSED


def _convert(f, name: str, new_type: str, imatrix_row, threads) -> ops.QuantizedTensor:
    """One tensor as new_type: float32 straight from the map, or dequantized first, then quantized."""
    src = f.tensor(name)
    if src.qtype == "f32":
        w = src.data.view(np.float32).reshape(src.shape)
    else:
        w = ops.dequantize(src, threads=threads)
    shape = src.shape
    if len(shape) > 2 and imatrix_row is not None:  # experts: one imatrix row per (ne1, ne0) matrix
        k, rows = shape[-1], shape[-2]
        w2 = w.reshape(-1, rows, k)
        parts = [ops.quantize(np.ascontiguousarray(w2[e]), new_type, imatrix_row[e * k:(e + 1) * k],
                              threads=threads).data for e in range(w2.shape[0])]
        return ops.QuantizedTensor(np.concatenate(parts), new_type, shape)
    return ops.quantize(w, new_type, imatrix_row, threads=threads)


def _same_file(a: str, b: str) -> bool:
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # either does not exist (yet)
        return False


def quantize_model(src, dst, mix, *, threads: int | None = None, imatrix=None, pure: bool = False,
                   output_tensor_type: str | None = None, token_embedding_type: str | None = None,
                   leave_output_tensor: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> dict:
    """Quantize the GGUF model at src to mix (a name of MIXES, e.g. "Q4_K_M") and write it to dst.

    Byte-identical to llama.cpp's llama-quantize with the same settings: types per tensor by
    llama.cpp's rules, data from lowbit.quantize (ggml's bytes), same tensor order, metadata and
    layout. imatrix: a path (GGUF or legacy .dat, as written by llama-imatrix or lowbit imatrix) or
    a lowbit.imatrix.IMatrix. pure: every quantizable tensor gets the mix's default type (as
    --pure). output_tensor_type / token_embedding_type: type names for output.weight /
    token_embd.weight. leave_output_tensor: copy output.weight unchanged. progress(done, total) is
    called after each tensor. Returns a report (sizes, types, seconds).

    Raises ValueError for unknown mixes or types, a missing or mismatched imatrix, dst equal to src;
    GGUFError for malformed input; nothing is left at dst on failure.
    """
    t0 = time.perf_counter()
    mix = _check_mix(mix)
    src, dst = os.fspath(src), os.fspath(dst)
    threads = ops._check_threads("quantize_model", threads) or None
    if _same_file(src, dst):
        raise ValueError(f"[quantize_model] refusing to overwrite the input {src}; choose another output path")
    im = None
    if imatrix is not None:
        from .imatrix import IMatrix, load_imatrix
        im = imatrix if isinstance(imatrix, IMatrix) else load_imatrix(imatrix)
    f = open_gguf(src)
    try:
        types = plan_types(f, mix, has_imatrix=im is not None, pure=pure, output_tensor_type=output_tensor_type,
                           token_embedding_type=token_embedding_type, leave_output_tensor=leave_output_tensor)
        im_rows = _match_imatrix(f, types, im) if im is not None else {}
        for n, new in types.items():
            info = f.tensors[n]
            if not info.supported:
                raise ValueError(f"[quantize_model] {n} is {info.qtype}, a type lowbit cannot read")
            # llama.cpp: without an imatrix any such tensor is an error; with one, those it quantizes
            converted = new != info.qtype or im is None
            if (mix.requires_imatrix and new == "q2_k" and n not in ("token_embd.weight", "output.weight")
                    and converted and n not in im_rows):
                raise ValueError(f"[quantize_model] {mix.name} needs an importance matrix for {n} (pass imatrix=)")
        total = len(types)
        done = [0]
        previous = []  # the tensor written last: its pages of the map are dropped once it is written

        def lazy(name: str, new_type: str) -> LazyTensor:
            def load():
                if previous:
                    f.release(previous.pop())
                previous.append(name)
                info = f.tensors[name]
                if new_type == info.qtype:
                    out = f.tensor(name)  # copied as is, bytes straight from the map
                else:
                    out = _convert(f, name, new_type, im_rows.get(name), threads)
                done[0] += 1
                if progress is not None:
                    progress(done[0], total)
                return ops.QuantizedTensor(out.data, out.qtype, shape)
            # llama.cpp writes ggml_n_dims dims: a (1, k) tensor is listed as (k,)
            shape = f.tensors[name].shape[-_ggml_n_dims(f.tensors[name].shape):]
            return LazyTensor(new_type, shape, load)

        metadata = _output_metadata(f, mix, im)
        write_gguf(dst, metadata, [(n, lazy(n, t)) for n, t in types.items()])
    finally:
        f.close()
    size_in = sum(t.nbytes for t in f.tensors.values())
    n_params = sum(int(np.prod(t.shape)) for t in f.tensors.values())
    size_out = sum(_tensor_bytes(f.tensors[n].shape, t) for n, t in types.items())
    hist: dict[str, int] = {}
    for t in types.values():
        hist[t] = hist.get(t, 0) + 1
    return {"input": src, "output": dst, "mix": mix.name, "file_type": metadata["general.file_type"].value,
            "tensors": len(types),
            "params": n_params, "bytes_in": size_in, "bytes_out": size_out,
            "bits_per_weight": 8.0 * size_out / max(n_params, 1), "types": hist, "tensor_types": types,
            "imatrix": None if im is None else im.path, "seconds": time.perf_counter() - t0}


def _tensor_bytes(shape, qtype: str) -> int:
    row = ops.type_info(qtype)
    return int(np.prod(shape)) // row["block_size"] * row["type_size"]


def _match_imatrix(f, types: dict[str, str], im) -> dict[str, np.ndarray]:
    """The imatrix row of each tensor that gets quantized, checked as llama.cpp checks it: missing
    entries are allowed (logged), a size other than ne0 * n_expert is an error (token_embd excepted)."""
    rows = {}
    used = 0
    for name, new in types.items():
        info = f.tensors[name]
        if new == info.qtype:
            continue
        v = im.values.get(name)
        if v is None:
            log.info("imatrix has no entry for %s", name)
            continue
        want = info.shape[-1] * (info.shape[-3] if len(info.shape) >= 3 else 1)
        if v.size != want:
            if name in ("token_embd.weight", "per_layer_token_embd.weight"):
                continue
            raise ValueError(f"[quantize_model] imatrix entry {name} has {v.size} values, the tensor needs {want} "
                             f"(ne0 x experts); is the imatrix from another model?")
        rows[name] = v
        used += 1
    if im.values and not used and any(t != f.tensors[n].qtype for n, t in types.items()):
        raise ValueError(f"[quantize_model] no imatrix entry matches a tensor of {f.path}; "
                         f"is {im.path or 'the imatrix'} from another model?")
    return rows
