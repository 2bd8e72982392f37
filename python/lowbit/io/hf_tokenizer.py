"""Tokenizers between Hugging Face files (tokenizer.json, tokenizer_config.json) and GGUF metadata.

HF -> GGUF (tokenizer_to_gguf_metadata) writes the keys llama.cpp's convert_hf_to_gguf.py writes for
a byte-level BPE vocabulary (TextModel._set_vocab_gpt2 + gguf-py's SpecialVocab): tokenizer.ggml.model
'gpt2', .pre, .tokens, .token_type, .merges, the special token ids, add_bos/add_eos, chat_template.
The pre-tokenizer name is chosen as llama.cpp chooses it: the sha256 of the token ids of a fixed text
(CHECK_TEXT) looked up in a table (PRE_TOKENIZER_HASHES, the common entries of llama.cpp's).

GGUF -> HF (gguf_metadata_to_tokenizer_files) writes a tokenizer.json whose pre-tokenizer, model,
post-processor and decoder are those of the HF models each pre-tokenizer name comes from, so that
transformers tokenizes as llama.cpp does and converting it back gives the same GGUF keys.

The `tokenizers` library (Rust, already a lowbit dependency) replaces transformers' AutoTokenizer.
SentencePiece vocabularies (GGUF 'llama') are exported as transformers' byte-fallback BPE layout;
converting them from HF (tokenizer.model) is not supported yet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from typing import Any

import gguf

from ..errors import CheckpointError
from .gguf import GGUFValue

__all__ = ["CHECK_TEXT", "PRE_TOKENIZER_HASHES", "pre_tokenizer_name", "tokenizer_to_gguf_metadata",
           "gguf_metadata_to_tokenizer_files"]

log = logging.getLogger(__name__)
K = gguf.Keys.Tokenizer
TT = gguf.TokenType

# The text llama.cpp's convert_hf_to_gguf_update.py tokenizes to fingerprint a pre-tokenizer.
CHECK_TEXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 "
    "3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ "
    "------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, "
    "'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)

# sha256(str(token ids of CHECK_TEXT)) -> tokenizer.ggml.pre, from llama.cpp's get_vocab_base_pre
# (where two models share a hash, llama.cpp's later entry wins; so here).
PRE_TOKENIZER_HASHES = {
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",  # Meta-Llama-3-8B
    "c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d": "smaug-bpe",  # Smaug-Llama-3-70B
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",  # openai-community/gpt2
    "0fe1cf6eda062318a1af7270f3331a85c539a01778ff948e24388e949c5282f4": "gpt-2",  # ruGPT3XL
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",  # HuggingFaceTB/SmolLM-135M
    "35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34": "starcoder",  # bigcode/starcoder2-3b
    "6221ad2852e85ce96f791f476e0b390cf9b474c9e3d1362f53a24a06dc8220ff": "refact",  # Refact-1_6-base
    "9c2227e4dd922002fb81bde4fc02b0483ca4f12911410dee2255e4987644e3f8": "command-r",  # c4ai-command-r-v01
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",  # Qwen/Qwen1.5-7B
    "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",  # Qwen3-Embedding-0.6B
    "b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5": "deepseek-r1-qwen",  # R1-Distill-Qwen
    "32d85c31273f8019248f2559fed492d929ea28b17e51d81d3bb36fff23ca72b3": "stablelm2",  # stablelm-2-zephyr-1_6b
    "b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166": "olmo",  # mpt-7b / OLMo-1.7-7B-hf
    "a8594e3edff7c29c003940395316294b2c623e09894deebbc65f33f1515df79e": "dbrx",  # databricks/dbrx-base
    "fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085": "phi-2",  # microsoft/phi-2
    "0e9433cbbb161f89e264eb32e8e64bfe69e834973ffca5d41d3948a604a3e2a3": "pixtral",  # pixtral-12b
}

# HF pre-tokenizers of the models behind each GGUF pre-tokenizer family (lowbit.model.tokenizer's
# families): GPT-2's byte-level regex; SmolLM/StarCoder split digits first; Llama-3 and Qwen2 split
# with their own regex and byte-encode without one.
_LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def _byte_level(use_regex: bool) -> dict:
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": use_regex}


def _split(regex: str) -> dict:
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


_HF_PRE_TOKENIZERS = {
    "gpt2": _byte_level(True),
    "smollm": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                      _byte_level(True)]},
    "llama3": {"type": "Sequence", "pretokenizers": [_split(_LLAMA3_REGEX), _byte_level(False)]},
    "qwen2": {"type": "Sequence", "pretokenizers": [_split(_QWEN2_REGEX), _byte_level(False)]},
}

# special token kinds SpecialVocab reads, and their GGUF id keys
_SPECIAL_KEYS = {"bos": K.BOS_ID, "eos": K.EOS_ID, "unk": K.UNK_ID, "sep": K.SEP_ID, "pad": K.PAD_ID,
                 "cls": K.CLS_ID if hasattr(K, "CLS_ID") else "tokenizer.ggml.cls_token_id",
                 "mask": K.MASK_ID}
_ADD_KEYS = {"bos": K.ADD_BOS, "eos": K.ADD_EOS, "sep": K.ADD_SEP}


# -------------------------------------------------------------------------------------------------
# HF -> GGUF


def _hf_tokenizer(tokenizer_json: dict):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_str(json.dumps(tokenizer_json))
    except Exception as e:  # the Rust library raises its own Exception type
        raise CheckpointError(f"[convert] tokenizer.json cannot be loaded by the tokenizers library: {e}") from None


def pre_tokenizer_name(tokenizer_json: dict) -> str:
    """tokenizer.ggml.pre for an HF byte-level BPE tokenizer, by llama.cpp's fingerprint."""
    ids = _hf_tokenizer(tokenizer_json).encode(CHECK_TEXT).ids
    digest = hashlib.sha256(str(ids).encode()).hexdigest()
    name = PRE_TOKENIZER_HASHES.get(digest)
    if name is None:
        raise CheckpointError(f"[convert] the BPE pre-tokenizer is not recognized (chkhsh {digest}); lowbit knows "
                              f"{', '.join(sorted(set(PRE_TOKENIZER_HASHES.values())))}")
    return name


def _looks_special(text: str) -> bool:
    """llama.cpp's does_token_look_special: added tokens some models forget to mark special."""
    return (text in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
            or (text.startswith("<|") and text.endswith("|>"))
            or (text.startswith("<｜") and text.endswith("｜>"))
            or (text.startswith("<unused") and text.endswith(">")))


def _vocab(tokenizer_json: dict, vocab_size: int | None) -> tuple[list[str], list[int]]:
    tok = _hf_tokenizer(tokenizer_json)
    vocab = tok.get_vocab(with_added_tokens=True)
    added = tok.get_added_tokens_decoder()  # id -> AddedToken
    n = vocab_size if vocab_size is not None else len(vocab)
    if vocab and max(vocab.values()) >= n:
        raise CheckpointError(f"[convert] tokenizer has token id {max(vocab.values())} >= vocab_size {n}")
    reverse = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(n):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(TT.UNUSED)
            continue
        text = reverse[i]
        if i in added:
            if not added[i].normalized:
                # llama.cpp assumes added tokens are pre-normalized; it round-trips them through the tokenizer
                text = tok.decode(tok.encode(text, add_special_tokens=False).ids, skip_special_tokens=False)
            if added[i].special or _looks_special(text):
                types.append(TT.CONTROL)
            else:
                text = text.replace("\u2581", " ")
                types.append(TT.USER_DEFINED)
        else:
            types.append(TT.NORMAL)
        tokens.append(text)
    return tokens, [int(t) for t in types]


def _merges(tokenizer_json: dict) -> list[str]:
    merges = (tokenizer_json.get("model") or {}).get("merges") or []
    if merges and isinstance(merges[0], list):
        # transformers >= 4.45 writes pairs (to allow spaces); llama.cpp stores "a b", spaces as U+0120
        return [" ".join("".join(chr(ord(c) + 256) if c == " " else c for c in part) for part in pair)
                for pair in merges]
    if not all(isinstance(m, str) for m in merges):
        raise CheckpointError("[convert] tokenizer.json merges are neither strings nor pairs")
    return list(merges)


def _token_content(entry) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("content"), str):
        return entry["content"]
    return None


def _special_vocab(tokenizer_json: dict, tokenizer_config: dict | None, config: dict,
                   chat_template_file: str | None, n_vocab: int | None = None) -> tuple[dict, dict, Any]:
    """(special ids, add_* flags, chat template) as gguf-py's SpecialVocab finds them."""
    tc = dict(tokenizer_config or {})
    ids: dict[str, int] = {}
    add: dict[str, bool] = {}
    added_tokens = tokenizer_json.get("added_tokens") or []
    bos, eos = _token_content(tc.get("bos_token")), _token_content(tc.get("eos_token"))
    post = tokenizer_json.get("post_processor") or {}
    for proc in post.get("processors", [post]) if post else []:
        kind = proc.get("type")
        if kind == "ByteLevel":
            add.setdefault("bos", False)
            add.setdefault("eos", False)
        elif kind == "TemplateProcessing":
            single = proc.get("single") or []
            if len(single) > 1:
                first = single[0].get("SpecialToken", {}).get("id")
                last = single[-1].get("SpecialToken", {}).get("id")
                if first:
                    add["bos"] = first == bos
                if last:
                    add["eos"] = last == eos
        elif kind is not None:
            log.warning("tokenizer.json post-processor %s is not interpreted; add_bos/add_eos from "
                        "tokenizer_config.json only", kind)

    chat_template = tc.get("chat_template")
    if chat_template is None and chat_template_file is not None:
        with open(chat_template_file, encoding="utf-8") as f:
            chat_template = f.read()
    if not isinstance(chat_template, (str, list, type(None))):
        log.warning("tokenizer_config.json chat_template has type %s; ignored", type(chat_template).__name__)
        chat_template = None
    for typ in _SPECIAL_KEYS:
        flag = tc.get(f"add_{typ}_token")
        if isinstance(flag, bool) and typ not in add:
            add[typ] = flag
        content = _token_content(tc.get(f"{typ}_token"))
        if content is None:
            continue
        tid = next((t.get("id") for t in added_tokens if t.get("content") == content), None)
        if isinstance(tid, int) and 0 <= tid < (n_vocab or 2**63) and typ not in ids:
            ids[typ] = tid
    for typ in _SPECIAL_KEYS:  # config.json's *_token_id fill what tokenizer_config did not
        tid = config.get(f"{typ}_token_id")
        if type(tid) is int and 0 <= tid < (n_vocab or 2**63) and typ not in ids:
            ids[typ] = tid
    return ids, add, chat_template


# -------------------------------------------------------------------------------------------------
# SentencePiece tokenizer.model (protobuf), read without the sentencepiece library

_MAX_SPM_BYTES = 64 << 20
# sentencepiece's ModelProto.SentencePiece.Type; llama.cpp keeps unknown/control/unused/byte, and
# every other piece (USER_DEFINED included) becomes NORMAL (_create_vocab_sentencepiece)
_SPM_TYPES = {2: TT.UNKNOWN, 3: TT.CONTROL, 5: TT.UNUSED, 6: TT.BYTE}


def _varint(buf: bytes, pos: int, path: str) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise CheckpointError(f"[read_sentencepiece] {path}: truncated or overlong varint at byte {pos}")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def _fields(buf: bytes, path: str):
    """(field number, wire type, value) of a protobuf message; lengths checked against the buffer."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, path)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, path)
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            if pos + n > len(buf):
                raise CheckpointError(f"[read_sentencepiece] {path}: truncated fixed field at byte {pos}")
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 2:
            n, pos = _varint(buf, pos, path)
            if n > len(buf) - pos:
                raise CheckpointError(f"[read_sentencepiece] {path}: field {field} claims {n} bytes, "
                                      f"{len(buf) - pos} remain")
            value, pos = buf[pos:pos + n], pos + n
        else:
            raise CheckpointError(f"[read_sentencepiece] {path}: unsupported protobuf wire type {wire}")
        yield field, wire, value


def read_sentencepiece(path: str) -> list[tuple[str, float, int]]:
    """(piece, score, GGUF token type) of every piece of a SentencePiece tokenizer.model."""
    size = os.path.getsize(path)
    if size > _MAX_SPM_BYTES:
        raise CheckpointError(f"[read_sentencepiece] {path} is {size} bytes, more than {_MAX_SPM_BYTES}")
    with open(path, "rb") as f:
        buf = f.read()
    pieces = []
    for field, wire, value in _fields(buf, path):
        if field != 1 or wire != 2:  # 1: repeated SentencePiece; trainer/normalizer specs are not needed
            continue
        piece, score, kind = None, 0.0, 1
        for f2, w2, v2 in _fields(value, path):
            if f2 == 1 and w2 == 2:
                try:
                    piece = v2.decode("utf-8")
                except UnicodeDecodeError:
                    raise CheckpointError(f"[read_sentencepiece] {path}: piece {len(pieces)} is not UTF-8") from None
            elif f2 == 2 and w2 == 5:
                score = struct.unpack("<f", v2)[0]
            elif f2 == 3 and w2 == 0:
                kind = v2
        if piece is None:
            raise CheckpointError(f"[read_sentencepiece] {path}: piece {len(pieces)} has no text")
        pieces.append((piece, score, int(_SPM_TYPES.get(kind, TT.NORMAL))))
    if not pieces:
        raise CheckpointError(f"[read_sentencepiece] {path} holds no pieces (not a SentencePiece model?)")
    return pieces


def _spm_vocab(hf_dir: str, config: dict, tokenizer_config: dict | None):
    """tokens, scores, types as llama.cpp's _create_vocab_sentencepiece builds them."""
    pieces = read_sentencepiece(os.path.join(hf_dir, "tokenizer.model"))
    n = config.get("vocab_size") or len(pieces)
    tokens = [f"[PAD{i}]" for i in range(n)]
    scores = [-10000.0] * n
    types = [int(TT.UNUSED)] * n
    for i, (piece, score, kind) in enumerate(pieces[:n]):
        tokens[i], scores[i], types[i] = piece, score, kind
    added_file = os.path.join(hf_dir, "added_tokens.json")
    if os.path.isfile(added_file):
        from .hf import read_json
        for text, tid in (read_json(added_file) or {}).items():
            if type(tid) is int and 0 <= tid < n:
                tokens[tid], scores[tid], types[tid] = text, -1000.0, int(TT.USER_DEFINED)
    for tid, data in ((tokenizer_config or {}).get("added_tokens_decoder") or {}).items():
        tid = int(tid)
        if not 0 <= tid < n or not isinstance(data, dict) or not isinstance(data.get("content"), str):
            continue
        text = data["content"]
        if data.get("special") or _looks_special(text):
            types[tid] = int(TT.CONTROL)
        else:
            text = text.replace("\u2581", " ")
            types[tid] = int(TT.USER_DEFINED)
        tokens[tid], scores[tid] = text, -1000.0
    return tokens, scores, types


def tokenizer_to_gguf_metadata(hf_dir: str, config: dict, tokenizer_json: dict | None,
                               tokenizer_config: dict | None) -> dict[str, GGUFValue]:
    """The tokenizer.* keys llama.cpp's converter writes: SentencePiece when there is a tokenizer.model
    (as LlamaModel.set_vocab prefers), else byte-level BPE from tokenizer.json."""
    spm = os.path.isfile(os.path.join(hf_dir, "tokenizer.model"))
    if tokenizer_json is None and not spm:
        raise CheckpointError(f"[convert] {hf_dir} has neither tokenizer.json nor tokenizer.model")
    md: dict[str, GGUFValue] = {}
    if tokenizer_config and isinstance(tokenizer_config.get("add_prefix_space"), bool):
        md[K.ADD_PREFIX] = GGUFValue(tokenizer_config["add_prefix_space"], "bool")
    jinja = os.path.join(hf_dir, "chat_template.jinja")
    if spm:
        tokens, scores, types = _spm_vocab(hf_dir, config, tokenizer_config)
        md[K.MODEL] = GGUFValue("llama", "string")
        md[K.PRE] = GGUFValue("default", "string")
        md[K.LIST] = GGUFValue(tokens, "string")
        md[K.SCORES] = GGUFValue(scores, "float32")
        md[K.TOKEN_TYPE] = GGUFValue(types, "int32")
        ids, add, chat_template = _special_vocab(tokenizer_json or {}, tokenizer_config, config,
                                                 jinja if os.path.isfile(jinja) else None, n_vocab=len(tokens))
        return _finish(md, ids, add, chat_template, config)
    model = tokenizer_json.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise CheckpointError(f"[convert] tokenizer.json model is {model.get('type')!r} "
                              f"(byte_fallback={model.get('byte_fallback')}); lowbit converts byte-level BPE only")
    tokens, types = _vocab(tokenizer_json, config.get("vocab_size"))
    md[K.MODEL] = GGUFValue("gpt2", "string")
    md[K.PRE] = GGUFValue(pre_tokenizer_name(tokenizer_json), "string")
    md[K.LIST] = GGUFValue(tokens, "string")
    md[K.TOKEN_TYPE] = GGUFValue(types, "int32")
    merges = _merges(tokenizer_json)
    if merges:
        md[K.MERGES] = GGUFValue(merges, "string")
    ids, add, chat_template = _special_vocab(tokenizer_json, tokenizer_config, config,
                                             jinja if os.path.isfile(jinja) else None)
    return _finish(md, ids, add, chat_template, config)


def _finish(md: dict, ids: dict, add: dict, chat_template, config: dict) -> dict[str, GGUFValue]:
    """Special ids, add_* flags, chat template and LlamaModel.set_vocab's model-specific rules."""
    for typ, tid in ids.items():
        md[_SPECIAL_KEYS[typ]] = GGUFValue(tid, "uint32")
    for typ, flag in add.items():
        if typ in _ADD_KEYS:
            md[_ADD_KEYS[typ]] = GGUFValue(flag, "bool")
    if chat_template is not None:
        if isinstance(chat_template, list):
            raise CheckpointError("[convert] named chat templates (a list) are not converted yet")
        md[K.CHAT_TEMPLATE] = GGUFValue(chat_template, "string")
    if config.get("vocab_size") == 49152:
        # llama.cpp's LlamaModel.set_vocab: granite-small / SmolLM vocabularies never add BOS
        md[K.ADD_BOS] = GGUFValue(False, "bool")
    return md


# -------------------------------------------------------------------------------------------------
# GGUF -> HF


def _pre_family(pre: str) -> tuple[str, bool, bool]:
    """(HF pre-tokenizer family, ignore_merges, clean_up_tokenization_spaces) for a GGUF pre name."""
    from ..model.tokenizer import _PRE

    rules = _PRE.get(pre)
    if rules is None or rules.family not in _HF_PRE_TOKENIZERS:
        ok = sorted(n for n, r in _PRE.items() if r.family in _HF_PRE_TOKENIZERS)
        raise CheckpointError(f"[export_hf] pre-tokenizer {pre!r} cannot be written as tokenizer.json yet; "
                              f"lowbit writes {', '.join(ok)}")
    return rules.family, rules.ignore_merges, rules.clean_spaces


def _spm_parts(md: dict, tokens: list[str]) -> tuple[dict, dict, None, dict]:
    """(model, normalizer, pre-tokenizer, decoder) of a SentencePiece vocabulary as a byte-fallback BPE,
    the layout transformers' LlamaConverter writes for Llama-2 / Mistral / TinyLlama.

    The merges are lowbit's tokenizer's own (every split of a token into two tokens, ranked by the
    merged token's score), so HF and lowbit tokenize alike where scores are distinct; llama.cpp breaks
    ties between equal scores by position, which a BPE merge list cannot express.
    """
    from ..model.tokenizer import Tokenizer

    hf_model = json.loads(Tokenizer.from_gguf_metadata(md)._hf.to_str())["model"]
    hf_model.update(fuse_unk=True, byte_fallback=True)
    if md.get(K.ADD_PREFIX, True):
        normalizer = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                           {"type": "Replace", "pattern": {"String": " "},
                                                            "content": "\u2581"}]}
        strip = [{"type": "Strip", "content": " ", "start": 1, "stop": 0}]
    else:
        normalizer = {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}
        strip = []
    decoder = {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                {"type": "ByteFallback"}, {"type": "Fuse"}, *strip]}
    return hf_model, normalizer, None, decoder


def gguf_metadata_to_tokenizer_files(md: dict) -> dict[str, dict]:
    """tokenizer.json, tokenizer_config.json and generation_config.json from GGUF tokenizer metadata."""
    model = md.get(K.MODEL)
    if model not in ("gpt2", "llama"):
        raise CheckpointError(f"[export_hf] tokenizer model {model!r} cannot be exported; lowbit writes "
                              f"byte-level BPE ('gpt2') and SentencePiece BPE ('llama') vocabularies")
    tokens: list[str] = md[K.LIST]
    types: list[int] = md.get(K.TOKEN_TYPE) or [int(TT.NORMAL)] * len(tokens)
    if model == "gpt2":
        family, ignore_merges, clean_spaces = _pre_family(md.get(K.PRE, "default"))
        vocab = {}
        for i, t in enumerate(tokens):
            vocab.setdefault(t, i)
        hf_model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                    "ignore_merges": ignore_merges, "vocab": vocab, "merges": list(md.get(K.MERGES) or [])}
        normalizer, pre_tokenizer = None, _HF_PRE_TOKENIZERS[family]
        decoder = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    else:
        hf_model, normalizer, pre_tokenizer, decoder = _spm_parts(md, tokens)
        clean_spaces = False
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": types[i] in (TT.CONTROL, TT.UNKNOWN)}
             for i, t in enumerate(tokens) if types[i] in (TT.CONTROL, TT.USER_DEFINED, TT.UNKNOWN)]
    ids = {typ: md[key] for typ, key in _SPECIAL_KEYS.items() if key in md}
    add_bos, add_eos = md.get(K.ADD_BOS), md.get(K.ADD_EOS)
    if model == "llama" and add_bos is None:
        add_bos = True  # llama.cpp's default for SentencePiece vocabularies
    post = None
    head, tail, specials = [], [], {}
    for typ, on, side in (("bos", add_bos, head), ("eos", add_eos, tail)):
        if on and typ in ids:
            text = tokens[ids[typ]]
            side.append({"SpecialToken": {"id": text, "type_id": 0}})
            specials[text] = {"id": text, "ids": [ids[typ]], "tokens": [text]}
    if specials:
        # pair without a separator: llama.cpp's converter would read a middle token as add_sep_token
        seq_a, seq_b = {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}
        post = {"type": "TemplateProcessing", "single": head + [seq_a] + tail, "pair": head + [seq_a, seq_b] + tail,
                "special_tokens": specials}
    tokenizer_json = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post,
        "decoder": decoder,
        "model": hf_model,
    }
    tc: dict[str, Any] = {}
    if K.ADD_PREFIX in md:
        tc["add_prefix_space"] = bool(md[K.ADD_PREFIX])
    if add_bos is not None:
        tc["add_bos_token"] = bool(add_bos)
    if add_eos is not None:
        tc["add_eos_token"] = bool(add_eos)
    tc["added_tokens_decoder"] = {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added}
    for typ, tid in ids.items():
        if 0 <= tid < len(tokens):
            tc[f"{typ}_token"] = tokens[tid]
    if K.CHAT_TEMPLATE in md:
        tc["chat_template"] = md[K.CHAT_TEMPLATE]
    tc["clean_up_tokenization_spaces"] = bool(clean_spaces)
    arch = md.get("general.architecture")
    if f"{arch}.context_length" in md:
        tc["model_max_length"] = int(md[f"{arch}.context_length"])
    tc["tokenizer_class"] = "PreTrainedTokenizerFast"
    generation = {k: ids[t] for k, t in (("bos_token_id", "bos"), ("eos_token_id", "eos"), ("pad_token_id", "pad"))
                  if t in ids}
    return {"tokenizer.json": tokenizer_json, "tokenizer_config.json": tc,
            "generation_config.json": generation}
