"""Text <-> token ids from a GGUF file's tokenizer metadata, token for token like llama.cpp.

    tok = Tokenizer.from_gguf_metadata(metadata)      # metadata: the GGUF key/value dict
    ids = tok.encode("<|im_start|>user\\nhi<|im_end|>\\n")
    text = tok.decode(ids)

Two vocabulary types, as llama.cpp's llama-vocab.cpp reads them:

- ``tokenizer.ggml.model == "gpt2"``: byte-level BPE (GPT-2, SmolLM, Qwen2, Llama-3, ...). The text is
  first cut by llama.cpp's pre-tokenizer regexes for ``tokenizer.ggml.pre`` (applied in sequence, each
  one splitting the pieces of the one before, matches and the text between them both kept), then
  each piece is byte-encoded and merged by ``tokenizer.ggml.merges`` rank.
- ``tokenizer.ggml.model == "llama"``: SentencePiece-style BPE (Llama-2, Mistral, TinyLlama): spaces
  become U+2581, a space is put in front of the text (``add_space_prefix``), pairs are merged by the
  score of the merged token, and characters outside the vocabulary fall back to ``<0xXX>`` byte tokens.

The merging runs in Hugging Face ``tokenizers`` (Rust). Pre-tokenizer regexes are llama.cpp's, with
\\p{L}, \\p{N}, \\p{M}, \\p{P} and \\s spelled out from llama.cpp's own Unicode table (``_unicode_data.py``), so
code points are classified as llama.cpp classifies them, whatever Unicode version Python or the regex
engine knows. Control and user-defined tokens are cut out of the text first, longest text first, as
llama.cpp's tokenizer_st_partition does.
"""

from __future__ import annotations

import codecs
import functools
import heapq
import json
import logging
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from . import _unicode_data

__all__ = ["IncrementalDecoder", "Tokenizer"]

log = logging.getLogger(__name__)

# GGUF tokenizer.ggml.token_type values (llama_token_type)
TYPE_UNDEFINED, TYPE_NORMAL, TYPE_UNKNOWN, TYPE_CONTROL, TYPE_USER_DEFINED, TYPE_UNUSED, TYPE_BYTE = range(7)

# token attributes (llama_token_attr), derived from the types the way llama-vocab.cpp does
ATTR_UNDEFINED = 0
ATTR_UNKNOWN = 1 << 0
ATTR_UNUSED = 1 << 1
ATTR_NORMAL = 1 << 2
ATTR_CONTROL = 1 << 3
ATTR_USER_DEFINED = 1 << 4
ATTR_BYTE = 1 << 5
ATTR_LSTRIP = 1 << 7
ATTR_RSTRIP = 1 << 8
_TYPE_TO_ATTR = {
    TYPE_UNDEFINED: ATTR_UNDEFINED, TYPE_NORMAL: ATTR_NORMAL, TYPE_UNKNOWN: ATTR_UNKNOWN,
    TYPE_CONTROL: ATTR_CONTROL, TYPE_USER_DEFINED: ATTR_USER_DEFINED, TYPE_UNUSED: ATTR_UNUSED,
    TYPE_BYTE: ATTR_BYTE,
}
_ATTR_SPECIAL = ATTR_CONTROL | ATTR_UNKNOWN

_SPACE = "\u2581"  # SentencePiece's visible space
_C_ISSPACE = " \t\n\v\f\r"  # C isspace() in the "C" locale: what llama.cpp's lstrip/rstrip remove

# Token texts llama.cpp recognises as end-of-turn / end-of-message / end-of-generation (llama-vocab.cpp,
# "auto-detect special tokens by text"); they are made control tokens if the file says otherwise.
_EOT_TEXTS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
              "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>")
_EOM_TEXTS = ("<|eom_id|>",)
_FIM_TEXTS = {  # fill-in-the-middle markers, by the metadata key that names them
    "fim_pre": ("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
                "<|code_prefix|>", "<|prefix|>"),
    "fim_suf": ("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
                "<|code_suffix|>", "<|suffix|>"),
    "fim_mid": ("<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
                "<|code_middle|>", "<|middle|>"),
    "fim_pad": ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"),
    "fim_rep": ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"),
    "fim_sep": ("<|file_sep|>",),
}
_FIM_DEPRECATED = {"fim_pre": "prefix", "fim_suf": "suffix", "fim_mid": "middle"}
_EOG_TEXTS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
              "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
              "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
              "<｜end▁of▁sentence｜>", "[e~[")


# ----------------------------------------------------------------------------------------------------
# pre-tokenizers: llama.cpp's regexes (llm_tokenizer_bpe's switch over LLAMA_VOCAB_PRE_TYPE_*)
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Pre:
    family: str                 # key of _PATTERNS
    ignore_merges: bool = False  # a piece that is a whole vocabulary token is taken as is
    add_bos: bool = False       # default of tokenizer.ggml.add_bos_token
    clean_spaces: bool = True   # llama.cpp's detokenize "clean_up_tokenization_spaces"
    bos_null: bool = False      # the vocabulary has no BOS unless the file names one


def _pre_table() -> dict[str, _Pre]:
    t: dict[str, _Pre] = {"default": _Pre("default")}
    for name in ("gpt-2", "phi-2", "gigachat", "a.x-4.0", "mellum", "mpt", "olmo", "jais", "exaone4"):
        t[name] = _Pre("gpt2")
    for name in ("trillion", "granite-docling"):
        t[name] = _Pre("gpt2", clean_spaces=False)
    for name in ("starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"):
        t[name] = _Pre("smollm")
    for name in ("smollm", "command-r"):
        t[name] = _Pre("smollm", clean_spaces=False)
    for name in ("stablelm2", "megrez"):
        t[name] = _Pre("qwen2")
    for name in ("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open"):
        t[name] = _Pre("qwen2", clean_spaces=False)
    t["qwen35"] = _Pre("qwen35", clean_spaces=False)
    for name in ("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                 "jina-v5-nano"):
        t[name] = _Pre("llama3", ignore_merges=True, add_bos=True)
    for name in ("dbrx", "smaug-bpe"):
        t[name] = _Pre("llama3")
    t["chatglm-bpe"] = _Pre("llama3", bos_null=True)
    for name in ("glm4", "glm5"):
        t[name] = _Pre("llama3", ignore_merges=True, bos_null=True)
    return t


_PRE = _pre_table()

# llama.cpp's regexes, \p{..} and \s standing for llama.cpp's classes. GPT-2's is written with the final
# "|\s+" that llama.cpp's hand-written matcher (unicode_regex_split_custom_gpt2) implements.
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
_PATTERNS = {
    "default": [r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "gpt2": [_GPT2],
    "smollm": [r"\p{N}", _GPT2],  # digits one by one, then GPT-2
    "llama3": [_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
               r"|\s+(?!\S)|\s+"],
    "qwen2": [_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
              r"|\s+(?!\S)|\s+"],
    "qwen35": [_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+"],  # Qwen2's, with combining marks kept in letter runs
}


def _class_body(ranges: str) -> str:
    """'41-5A,61' -> '\\x{41}-\\x{5A}\\x{61}': the inside of an Oniguruma character class."""
    out = []
    for r in ranges.split(","):
        a, _, b = r.partition("-")
        out.append(f"\\x{{{a}}}" + (f"-\\x{{{b}}}" if b else ""))
    return "".join(out)


@functools.lru_cache(maxsize=None)
def _onig(pattern: str) -> str:
    """Rewrite \\p{L}, \\p{N}, \\p{M}, \\p{P}, \\s, \\S with llama.cpp's classes, inside and outside [...]."""
    body = {"\\p{L}": _class_body(_unicode_data.L), "\\p{N}": _class_body(_unicode_data.N),
            "\\p{M}": _class_body(_unicode_data.M), "\\p{P}": _class_body(_unicode_data.P),
            "\\s": _class_body(_unicode_data.WHITESPACE)}
    out, i, inside = [], 0, False
    while i < len(pattern):
        if pattern.startswith("\\S", i):
            out.append("[^" + body["\\s"] + "]")
            i += 2
            continue
        for key, cls in body.items():
            if pattern.startswith(key, i):
                out.append(cls if inside else f"[{cls}]")
                i += len(key)
                break
        else:
            c = pattern[i]
            if c == "\\":  # keep escapes (\r, \n, \$ ...) whole
                out.append(pattern[i:i + 2])
                i += 2
                continue
            if c == "[":
                inside = True
            elif c == "]":
                inside = False
            out.append(c)
            i += 1
    return "".join(out)


# ----------------------------------------------------------------------------------------------------
# metadata helpers
# ----------------------------------------------------------------------------------------------------

def _text(v) -> str:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode("utf-8", errors="replace")
    return str(v)


def _get(md: Mapping, key: str, default=None):
    v = md.get(key, default)
    return default if v is None else v


def _as_list(v) -> list:
    if v is None:
        return []
    if hasattr(v, "tolist"):
        return v.tolist()
    return list(v)


_BYTE_TO_CHAR: dict[int, str] = {}
_CHAR_TO_BYTE: dict[str, int] = {}


def _byte_maps() -> tuple[dict[int, str], dict[str, int]]:
    """GPT-2's reversible byte <-> printable character map (unicode_byte_to_utf8_map in llama.cpp)."""
    if not _BYTE_TO_CHAR:
        keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
        n = 0
        for b in range(256):
            if b in keep:
                _BYTE_TO_CHAR[b] = chr(b)
            else:
                _BYTE_TO_CHAR[b] = chr(256 + n)
                n += 1
        _CHAR_TO_BYTE.update({c: b for b, c in _BYTE_TO_CHAR.items()})
    return _BYTE_TO_CHAR, _CHAR_TO_BYTE


def _vocab_rules(model: str, pre: str) -> _Pre:
    """The rules llama.cpp's loader sets for a vocabulary type and pre-tokenizer name."""
    if model == "llama":  # SentencePiece: no pre-tokenizer, BOS by default, no space cleaning
        return _Pre("spm", add_bos=True, clean_spaces=False)
    if model != "gpt2":
        raise NotImplementedError(
            f"[tokenizer] tokenizer.ggml.model {model!r} is not supported (expected 'gpt2' or 'llama')")
    if pre not in _PRE:
        raise NotImplementedError(
            f"[tokenizer] pre-tokenizer {pre!r} is not supported; supported: {', '.join(sorted(_PRE))}")
    return _PRE[pre]


# ----------------------------------------------------------------------------------------------------
# the tokenizer
# ----------------------------------------------------------------------------------------------------

class Tokenizer:
    """A GGUF vocabulary: ``encode`` / ``decode`` / ``apply_chat_template``, as llama.cpp does them.

    Build it with :meth:`from_gguf_metadata`. Attributes: ``vocab_size``, ``model`` ("gpt2" or "llama"),
    ``pre`` (pre-tokenizer name), ``bos_id``, ``eos_id``, ``eot_id``, ``eom_id``, ``unk_id``, ``pad_id``
    (``None`` when absent), ``eog_ids`` (every id that ends generation), ``add_bos``, ``add_eos``,
    ``add_space_prefix``, ``chat_template``.
    """

    def __init__(self, *, model: str, pre: str, tokens: Sequence[str], token_types: Sequence[int] | None,
                 scores: Sequence[float] | None, merges: Sequence[str] | None, metadata: Mapping):
        self.model = model
        self.pre = pre
        self._tokens = [t if t else f"[EMPTY_{i}]" for i, t in enumerate(tokens)]  # as llama.cpp renames
        n = len(self._tokens)
        self._ids = {t: i for i, t in enumerate(self._tokens)}
        if len(self._ids) != n:
            raise ValueError(f"[tokenizer] the vocabulary has {n - len(self._ids)} duplicate token texts")
        types = list(token_types) if token_types is not None else [TYPE_NORMAL] * n
        if len(types) < n:
            raise ValueError(f"[tokenizer] token_type has {len(types)} entries, expected {n}")
        self._attr = [_TYPE_TO_ATTR.get(int(t), ATTR_UNDEFINED) for t in types[:n]]
        if model == "gpt2" and merges is None:
            raise ValueError("[tokenizer] a gpt2 vocabulary needs tokenizer.ggml.merges")
        self._pre = _vocab_rules(model, pre)
        self.add_space_prefix = bool(_get(metadata, "tokenizer.ggml.add_space_prefix", model == "llama"))
        self.add_bos = bool(_get(metadata, "tokenizer.ggml.add_bos_token", self._pre.add_bos))
        self.add_eos = bool(_get(metadata, "tokenizer.ggml.add_eos_token", False))
        self.clean_spaces = self._pre.clean_spaces
        self._read_special_ids(metadata)
        self._phi3_rstrip(_text(_get(metadata, "general.name", "")).lower())
        # special tokens are cut out of the text longest first (llama.cpp sorts by length only; ties by id)
        self._specials = sorted((i for i in range(n) if self._attr[i] & (_ATTR_SPECIAL | ATTR_USER_DEFINED)),
                                key=lambda i: (-len(self._tokens[i].encode("utf-8")), i))
        template = metadata.get("tokenizer.chat_template")
        self.chat_template = None if template is None else _text(template)
        self._pieces = self._build_pieces()
        self._dropped_id = None
        self._spm_exact = False
        self._hf = self._build_bpe(scores, merges)

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def from_gguf_metadata(cls, metadata: Mapping) -> "Tokenizer":
        """Build from a GGUF key/value dict (``tokenizer.ggml.*`` keys, plus ``general.name``)."""
        md = metadata
        model = _text(_get(md, "tokenizer.ggml.model", ""))
        if not model:
            raise ValueError("[tokenizer] metadata has no tokenizer.ggml.model")
        tokens = [_text(t) for t in _as_list(md.get("tokenizer.ggml.tokens"))]
        if not tokens:
            raise ValueError("[tokenizer] metadata has no tokenizer.ggml.tokens")
        types = md.get("tokenizer.ggml.token_type")
        scores = md.get("tokenizer.ggml.scores")
        merges = md.get("tokenizer.ggml.merges")
        return cls(model=model, pre=_text(_get(md, "tokenizer.ggml.pre", "default")) or "default",
                   tokens=tokens, token_types=None if types is None else [int(t) for t in _as_list(types)],
                   scores=None if scores is None else [float(s) for s in _as_list(scores)],
                   merges=None if merges is None else [_text(m) for m in _as_list(merges)], metadata=md)

    def _read_special_ids(self, md: Mapping) -> None:
        """tokenizer.ggml.*_token_id, else llama.cpp's defaults for the vocabulary type."""
        n = len(self._tokens)
        llama = self.model == "llama"

        def special(key: str, default: int | None) -> int | None:
            if default is not None and default >= n:
                default = None
            v = md.get(f"tokenizer.ggml.{key}_token_id")
            if v is None or not 0 <= int(v) < n:  # llama.cpp keeps the default for a bad id
                return default
            return int(v)

        self.bos_id = special("bos", 1 if llama else None if self._pre.bos_null else 11)
        self.eos_id = special("eos", 2 if llama else 11)
        self.unk_id = special("unknown", 0 if llama else None)
        self.pad_id = special("padding", None)
        self.eot_id = special("eot", None)
        self.eom_id = special("eom", None)
        fim = {k: special(k, None) for k in _FIM_TEXTS}
        for k, old in _FIM_DEPRECATED.items():  # tokenizer.ggml.prefix_token_id etc. override
            fim[k] = special(old, fim[k])
        self._find_eog(fim)

    def _find_eog(self, fim: dict[str, int | None]) -> None:
        """EOT / EOM / FIM / end-of-generation ids by token text, as llama.cpp's loader guesses them.

        A token found by its text (not named in the metadata) is made a control token, so it is cut
        out of text by encode and hidden by decode(special=False), as llama.cpp does.
        """
        def guess(texts) -> int | None:
            # llama.cpp takes whichever candidate its hash map yields first; the lowest id is our rule
            found = [self._ids[t] for t in texts if t in self._ids]
            if not found:
                return None
            self._attr[min(found)] |= ATTR_CONTROL
            return min(found)

        if self.eot_id is None:
            self.eot_id = guess(_EOT_TEXTS)
        if self.eom_id is None:
            self.eom_id = guess(_EOM_TEXTS)
        for k, texts in _FIM_TEXTS.items():
            if fim[k] is None:
                fim[k] = guess(texts)
        self.fim_ids = {k[4:]: v for k, v in fim.items() if v is not None}  # pre, suf, mid, pad, rep, sep
        # control tokens whose text says "unused" are unused (llama.cpp: auto-detect unused tokens)
        for i, t in enumerate(self._tokens):
            if self._attr[i] & ATTR_CONTROL and "unused" in t:
                self._attr[i] |= ATTR_UNUSED
        eog = {fim[k] for k in ("fim_pad", "fim_rep", "fim_sep") if fim[k] is not None}
        for t in _EOG_TEXTS:
            if t in self._ids:
                eog.add(self._ids[t])
                self._attr[self._ids[t]] |= ATTR_CONTROL
        for t in ("<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"):  # gpt-oss: always rendered
            if t in self._ids:
                self._attr[self._ids[t]] = ATTR_USER_DEFINED
        eog.update(i for i in (self.eos_id, self.eot_id, self.eom_id) if i is not None)
        texts = {self._tokens[i] for i in eog}
        if "<|end|>" in texts and (("<|return|>" in texts and "<|call|>" in texts)
                                    or ("<|calls|>" in texts and "<|flush|>" in texts)):
            end = self._ids["<|end|>"]
            eog.discard(end)
            self._attr[end] = ATTR_USER_DEFINED
        if "</s>" in texts and ("<|tool_response>" in texts or "<|plamo:eos|>" in texts):
            s = self._ids["</s>"]
            eog.discard(s)
            self._attr[s] = ATTR_NORMAL
        self.eog_ids = frozenset(eog)

    def _phi3_rstrip(self, name: str) -> None:
        """Phi-3's special tokens eat the whitespace after them (llama.cpp sets RSTRIP by model name)."""
        if "phi-3" not in name and "phi3" not in name:
            return
        for i in range(len(self._tokens)):
            if self._attr[i] & (_ATTR_SPECIAL | ATTR_USER_DEFINED):
                self._attr[i] |= ATTR_RSTRIP
        for t, on in (("</s>", True), ("<unk>", False), ("<s>", False), ("<|endoftext|>", False)):
            if t in self._ids:
                i = self._ids[t]
                self._attr[i] = self._attr[i] | ATTR_RSTRIP if on else self._attr[i] & ~ATTR_RSTRIP

    def _build_pieces(self) -> list[bytes]:
        """token_to_piece(id, special=True) for every id (llama.cpp's cache_token_to_piece)."""
        _, char_to_byte = _byte_maps()
        pieces = []
        for i, t in enumerate(self._tokens):
            a = self._attr[i]
            if a & (_ATTR_SPECIAL | ATTR_USER_DEFINED):
                pieces.append(t.encode("utf-8"))
            elif a & ATTR_NORMAL:
                if self.model == "llama":
                    pieces.append(t.replace(_SPACE, " ").encode("utf-8"))
                else:
                    out = bytearray()
                    for c in t:
                        b = char_to_byte.get(c)
                        if b is None:  # not a byte-level character: llama.cpp's marker text
                            out += b"[UNK_BYTE_0x" + c.encode("utf-8").hex().encode() + t.encode("utf-8") + b"]"
                        else:
                            out.append(b)
                    pieces.append(bytes(out))
            elif a & ATTR_BYTE:
                pieces.append(bytes([self._byte_of(t)]))
            else:
                pieces.append(b"")
        return pieces

    def _byte_of(self, text: str) -> int:
        if self.model == "llama" or text.startswith("<0x"):
            return int(text[3:5], 16)
        return _byte_maps()[1][text]

    def _build_bpe(self, scores, merges):
        """The tokenizers.Tokenizer that runs the merges (and, for gpt2, the pre-tokenizer)."""
        import tokenizers
        from tokenizers import Regex, pre_tokenizers

        if self.model == "llama":
            return tokenizers.Tokenizer(self._spm_model(scores))
        tok = tokenizers.Tokenizer(self._byte_level_model(merges))
        steps = [pre_tokenizers.Split(Regex(_onig(p)), behavior="isolated") for p in _PATTERNS[self._pre.family]]
        steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False))
        tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
        return tok

    def _byte_level_model(self, merges: Sequence[str]):
        from tokenizers import models

        vocab = dict(self._ids)
        pairs, dropped = [], 0
        for m in merges:
            pos = m.find(" ", 1)  # as llama.cpp splits "a b" (a may start with a space)
            a, b = (m[:pos], m[pos + 1:]) if pos >= 0 else ("", "")
            # tokenizers wants both halves and the merged token in the vocabulary; llama.cpp would merge
            # anyway and then spell an out-of-vocabulary result byte by byte
            if a in vocab and b in vocab and a + b in vocab:
                pairs.append((a, b))
            else:
                dropped += 1
        if dropped:
            log.warning("[tokenizer] %d merges produce or use tokens outside the vocabulary: ignored", dropped)
        # A byte character outside the vocabulary stays a symbol in llama.cpp while pairs merge (so its
        # neighbours do not merge across it) and is dropped at the end. tokenizers would drop it first;
        # an extra "unknown" id keeps its place and _encode_fragments removes it afterwards.
        unk = None
        if any(c not in vocab for c in _byte_maps()[0].values()):
            unk = "\u0000lowbit-dropped-byte\u0000"
            vocab[unk] = self._dropped_id = len(self._tokens)
        return models.BPE(vocab=vocab, merges=pairs, unk_token=unk, fuse_unk=False,
                          ignore_merges=self._pre.ignore_merges)

    def _spm_model(self, scores: Sequence[float] | None):
        """SentencePiece BPE as merges: every split of a token into two vocabulary tokens, ranked by the
        merged token's score (higher first), which is the pair llama.cpp's llm_tokenizer_spm picks.

        llama.cpp breaks a tie between equal scores by position (leftmost first); tokenizers can only
        break it by rank, so a vocabulary where merged tokens share a score is encoded by _spm_exact_encode.
        """
        from tokenizers import models

        vocab = self._ids
        self._scores = list(scores) if scores is not None else [0.0] * len(self._tokens)
        cand = []
        for t, i in vocab.items():
            for k in range(1, len(t)):
                a, b = t[:k], t[k:]
                if a in vocab and b in vocab:
                    cand.append((-self._scores[i], i, k, a, b))
        merged = {i for _, i, *_ in cand}
        self._spm_exact = len({self._scores[i] for i in merged}) < len(merged)
        if self._spm_exact:
            log.info("[tokenizer] merged tokens share scores: using the exact (slower) SentencePiece path")
        cand.sort()
        unk = self._tokens[self.unk_id] if self.unk_id is not None else None
        return models.BPE(vocab=dict(vocab), merges=[(a, b) for *_, a, b in cand], unk_token=unk,
                          byte_fallback=True)

    def _spm_exact_encode(self, text: str) -> list[int]:
        """llama.cpp's llm_tokenizer_spm_session::tokenize, step for step (for tied scores)."""
        sym = list(text)  # symbol texts; "" once merged into the left neighbour
        n = len(sym)
        prev = list(range(-1, n - 1))
        nxt = list(range(1, n + 1))
        if n:
            nxt[-1] = -1
        heap: list[tuple[float, int, int, int]] = []

        def try_add(left: int, right: int) -> None:
            if left == -1 or right == -1:
                return
            t = sym[left] + sym[right]
            tid = self._ids.get(t)
            if tid is not None:  # highest score first, then leftmost
                heapq.heappush(heap, (-self._scores[tid], left, right, len(t)))

        for i in range(1, n):
            try_add(i - 1, i)
        while heap:
            _, left, right, size = heapq.heappop(heap)
            if not sym[left] or not sym[right] or len(sym[left]) + len(sym[right]) != size:
                continue  # one side was merged since
            sym[left] += sym[right]
            sym[right] = ""
            nxt[left] = nxt[right]
            if nxt[right] >= 0:
                prev[nxt[right]] = left
            try_add(prev[left], left)
            try_add(left, nxt[left])
        out: list[int] = []
        i = 0 if n else -1
        while i != -1:
            tid = self._ids.get(sym[i])
            if tid is not None:
                out.append(tid)
            else:  # characters outside the vocabulary: one <0xXX> token per UTF-8 byte
                out.extend(self._byte_token(b) for b in sym[i].encode("utf-8"))
            i = nxt[i]
        return out

    def _byte_token(self, b: int) -> int:
        tid = self._ids.get(f"<0x{b:02X}>")
        if tid is None and b < 0x80:
            tid = self._ids.get(chr(b))
        if tid is None:
            raise ValueError(f"[tokenizer] byte 0x{b:02X} has no <0x{b:02X}> token in the vocabulary")
        return tid

    # -- vocabulary --------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def token_text(self, token_id: int) -> str:
        """The token as stored in the GGUF file (byte-level or U+2581-spaced form)."""
        return self._tokens[self._check(token_id)]

    def token_id(self, text: str) -> int | None:
        """The id of a token given its stored text, or None."""
        return self._ids.get(text)

    def is_control(self, token_id: int) -> bool:
        return bool(self._attr[self._check(token_id)] & ATTR_CONTROL)

    def is_eog(self, token_id: int) -> bool:
        """Whether the token ends generation (EOS, EOT, EOM, ...)."""
        return token_id in self.eog_ids

    def _check(self, token_id: int) -> int:
        i = int(token_id)
        if not 0 <= i < len(self._tokens):
            raise ValueError(f"[tokenizer] token id {i} is out of range [0, {len(self._tokens)})")
        return i

    # -- encode ------------------------------------------------------------------------------------

    def encode(self, text: str, add_bos: bool | None = None, parse_special: bool = True,
               add_eos: bool | None = None) -> list[int]:
        """Token ids of ``text``, equal to llama.cpp's ``llama_tokenize``.

        add_bos / add_eos: ``None`` follows the file (``tokenizer.ggml.add_bos_token`` / ``add_eos_token``,
        else llama.cpp's default for the vocabulary). parse_special: control tokens written in the text
        (``<|im_start|>``) become their ids; user-defined tokens are always matched, as in llama.cpp.
        """
        if not isinstance(text, str):
            raise TypeError(f"[tokenizer] encode expects str, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"[tokenizer] text is not valid Unicode (lone surrogate?): {e}") from None
        add_bos = self.add_bos if add_bos is None else bool(add_bos)
        add_eos = self.add_eos if add_eos is None else bool(add_eos)
        out: list[int] = []
        if add_bos:
            if self.bos_id is None:
                raise ValueError("[tokenizer] add_bos=True but the vocabulary has no BOS token")
            out.append(self.bos_id)
        if text:
            frags = self._partition(text, parse_special)
            out.extend(self._encode_fragments(frags))
        if add_eos:
            if self.eos_id is None:
                raise ValueError("[tokenizer] add_eos=True but the vocabulary has no EOS token")
            out.append(self.eos_id)
        return out

    def _partition(self, text: str, parse_special: bool) -> list[str | int]:
        """Cut special tokens out of the text: a list of raw-text pieces (str) and token ids (int)."""
        frags: list[str | int] = [text]
        for tid in self._specials:
            attr = self._attr[tid]
            if not parse_special and attr & _ATTR_SPECIAL:
                continue  # user-defined tokens are matched even without parse_special
            st = self._tokens[tid]
            if not any(isinstance(f, str) and st in f for f in frags):
                continue
            new: list[str | int] = []
            for f in frags:
                if isinstance(f, int) or st not in f:
                    new.append(f)
                    continue
                start = 0
                while True:
                    m = f.find(st, start)
                    if m < 0:
                        if start < len(f):
                            new.append(f[start:])
                        break
                    left = f[start:m]
                    if attr & ATTR_LSTRIP:
                        left = left.rstrip(_C_ISSPACE)
                    if left:
                        new.append(left)
                    new.append(tid)
                    start = m + len(st)
                    if attr & ATTR_RSTRIP:
                        while start < len(f) and f[start] in _C_ISSPACE:
                            start += 1
            frags = new
        return frags

    def _encode_fragments(self, frags: list[str | int]) -> list[int]:
        texts: list[str] = []
        prev_special = True  # SPM: a space goes in front of the text and of every piece after a token
        for f in frags:
            if isinstance(f, int):
                prev_special = True
                continue
            if self.model == "llama":
                f = ((" " if self.add_space_prefix and prev_special else "") + f).replace(" ", _SPACE)
            texts.append(f)
            prev_special = False
        if self._spm_exact:
            return self._merge_fragments(frags, [self._spm_exact_encode(t) for t in texts])
        if self.model == "gpt2":  # long text: cut where every pre-tokenizer cuts, encode in parallel
            parts = [_chunks(t) for t in texts]
        else:  # SentencePiece merges run over the whole piece: no cut
            parts = [[t] for t in texts]
        batch = getattr(self._hf, "encode_batch_fast", self._hf.encode_batch)
        flat = batch([c for p in parts for c in p], add_special_tokens=False)
        encoded, k = [], 0
        for p in parts:
            encoded.append([i for e in flat[k:k + len(p)] for i in e.ids])
            k += len(p)
        if self._dropped_id is not None:
            drop = self._dropped_id
            encoded = [[i for i in ids if i != drop] if drop in ids else ids for ids in encoded]
        return self._merge_fragments(frags, encoded)

    @staticmethod
    def _merge_fragments(frags: list[str | int], encoded: list[list[int]]) -> list[int]:
        """Put the ids of the text pieces back between the special tokens."""
        out: list[int] = []
        k = 0
        for f in frags:
            if isinstance(f, int):
                out.append(f)
            else:
                out.extend(encoded[k])
                k += 1
        return out

    # -- decode ------------------------------------------------------------------------------------

    def token_to_piece(self, token_id: int, special: bool = True) -> bytes:
        """The bytes a token stands for (llama_token_to_piece). Control tokens give b"" unless special."""
        i = self._check(token_id)
        if not special and self._attr[i] & _ATTR_SPECIAL:
            return b""
        return self._pieces[i]

    def decode_bytes(self, ids: Iterable[int], special: bool = True) -> bytes:
        """llama_detokenize(remove_special=False, unparse_special=special), as bytes."""
        out = bytearray()
        remove_space = self.add_space_prefix  # the space encode put in front of the text
        for t in ids:
            p = self.token_to_piece(t, special)
            if remove_space and p[:1] == b" ":
                p = p[1:]
            remove_space = False
            out += p
        if self.clean_spaces:
            out = _clean_spaces(out)
        return bytes(out)

    def decode(self, ids: Iterable[int], special: bool = True) -> str:
        """Text of the ids (invalid UTF-8, e.g. a cut-off multi-byte character, becomes U+FFFD)."""
        return self.decode_bytes(ids, special).decode("utf-8", errors="replace")

    # -- chat --------------------------------------------------------------------------------------

    def apply_chat_template(self, messages: Sequence[Mapping], add_generation_prompt: bool = True,
                            **kwargs) -> str:
        """The prompt text for ``messages`` ([{"role": ..., "content": ...}]).

        Renders the file's ``tokenizer.chat_template`` with jinja2 (sandboxed, as transformers does);
        without jinja2 or without a template, ChatML (``<|im_start|>role\\ncontent<|im_end|>\\n``).
        Encode the result with ``encode(prompt)`` (parse_special=True turns the markers into tokens).
        """
        for m in messages:
            if "role" not in m or "content" not in m:
                raise ValueError(f"[apply_chat_template] each message needs 'role' and 'content', got {dict(m)}")
        if self.chat_template:
            try:
                template = _compile_template(self.chat_template)
            except ImportError:
                template = None
            if template is not None:
                bos = self._tokens[self.bos_id] if self.bos_id is not None else ""
                eos = self._tokens[self.eos_id] if self.eos_id is not None else ""
                return template.render(messages=[dict(m) for m in messages],
                                       add_generation_prompt=add_generation_prompt,
                                       bos_token=bos, eos_token=eos, **kwargs)
        return chatml(messages, add_generation_prompt)


_CHUNK = 16384
_SAFE_CUT = re.compile(r"[A-Za-z](?= [A-Za-z])")


def _chunks(text: str) -> list[str]:
    """Cut a long text after a letter that is followed by a space and a letter ("word| word").

    Every byte-level pre-tokenizer here ends a letter run at that space and starts the next piece
    with it, and no match looks further back or ahead across it, so the pieces of the parts are the
    pieces of the whole and the ids are the same.
    """
    if len(text) < 2 * _CHUNK:
        return [text]
    out, start = [], 0
    while len(text) - start >= 2 * _CHUNK:
        m = _SAFE_CUT.search(text, start + _CHUNK)
        if m is None:
            break
        out.append(text[start:m.end()])
        start = m.end()
    out.append(text[start:])
    return out


def chatml(messages: Sequence[Mapping], add_generation_prompt: bool = True) -> str:
    """ChatML, the fallback chat format (SmolLM2 and Qwen2 use it)."""
    s = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return s + ("<|im_start|>assistant\n" if add_generation_prompt else "")


@functools.lru_cache(maxsize=16)
def _compile_template(source: str):
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    def strftime_now(fmt):
        import datetime
        return datetime.datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, ensure_ascii=False: json.dumps(
        x, indent=indent, ensure_ascii=ensure_ascii)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def _clean_spaces(text: bytearray) -> bytearray:
    """llama.cpp's detokenize clean-up (for vocabularies with clean_spaces): three passes over bytes."""
    # " ?", " !", " .", " ,": drop the space
    out = bytearray(text[:1])
    for i in range(1, len(text)):
        if text[i - 1] == 0x20 and text[i] in b"?!.,":
            out.pop()
        out.append(text[i])
    # " ' ": drop both spaces (llama.cpp overwrites the second space with NUL, seen by the next step)
    t, out = out, bytearray(out[:1])
    prev = t[0] if t else 0
    i = 1
    while i < len(t):
        x = t[i]
        if x == 0x27 and i + 1 < len(t) and prev == 0x20 and t[i + 1] == 0x20:
            out[-1] = x
            prev = 0
            i += 2
            continue
        out.append(x)
        prev = x
        i += 1
    # " 's", " 'm", " 're", " 've": drop the space
    t, out = out, bytearray(out[:1])
    for i in range(1, len(t)):
        x = t[i]
        if t[i - 1] == 0x20 and x == 0x27 and i + 1 < len(t):
            x1 = t[i + 1]
            if x1 in b"sm" or (i + 2 < len(t) and (t[i + 1:i + 3] in (b"re", b"ve"))):
                out.pop()
        out.append(x)
    return out


class IncrementalDecoder:
    """Text as token ids arrive during generation: ``feed(id)`` returns the newly completed text.

    Bytes of a UTF-8 character split across tokens are held back until the character is complete (an
    invalid sequence becomes U+FFFD, as in ``decode``); ``flush()`` returns what is left and starts
    afresh. Pieces come out as they are, like llama.cpp's token_to_piece stream: generated tokens
    continue a prompt. With ``strip_space_prefix=True`` the first piece loses the space a SentencePiece
    vocabulary's encode puts in front of a text, and the outputs joined equal ``decode(ids)`` (for
    vocabularies that do not clean spaces on decode, e.g. SmolLM2, Qwen2, Llama-3, SentencePiece).
    """

    def __init__(self, tokenizer: Tokenizer, special: bool = True, strip_space_prefix: bool = False):
        self.tokenizer = tokenizer
        self.special = special
        self.strip_space_prefix = strip_space_prefix and tokenizer.add_space_prefix
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._first = True

    def feed(self, token_id: int) -> str:
        p = self.tokenizer.token_to_piece(token_id, self.special)
        if self._first:
            self._first = False
            if self.strip_space_prefix and p[:1] == b" ":
                p = p[1:]
        return self._utf8.decode(p)

    def feed_many(self, ids: Iterable[int]) -> str:
        return "".join(self.feed(i) for i in ids)

    def flush(self) -> str:
        """The held-back bytes of an unfinished character (as U+FFFD); the next feed starts a new text."""
        s = self._utf8.decode(b"", final=True)
        self._utf8.reset()
        self._first = True
        return s
