"""How often llama.cpp agrees with itself on the next token when only float rounding changes.

The issue-4 bar asks lowbit for >= 98% top-1 agreement with llama.cpp on WikiText-2 (ctx 512, the second
half of each chunk). This measures the ceiling such a bar has for a given file: llama.cpp's default
(f16 KV cache) against llama.cpp with an f32 KV cache (more precise, same model) and against a different
micro-batch size, on the same positions.

    PYTHONPATH=python python3 tools/llama_cpp_self_agreement.py MODEL.gguf [CHUNKS]
"""

import sys

import numpy as np

sys.path.insert(0, "tests")
import llama_cpp  # noqa: E402
from tokenizer_cases import read_wikitext, wikitext_path  # noqa: E402

from lowbit.io.gguf import open_gguf  # noqa: E402
from lowbit.model.tokenizer import Tokenizer  # noqa: E402

CTX = 512


def scored_logits(path: str, tokens: list[int], n_chunks: int, **kw) -> np.ndarray:
    llm = llama_cpp.Llama(model_path=path, n_ctx=CTX, logits_all=True, verbose=False, n_threads=2, **kw)
    out = []
    for c in range(n_chunks):
        llm.reset()
        llm.eval(tokens[c * CTX:(c + 1) * CTX])
        out.append(np.array(llm.scores[CTX // 2:CTX - 1], dtype=np.float32))
    return np.concatenate(out)


def main() -> None:
    path = sys.argv[1]
    n_chunks = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with open_gguf(path) as f:
        tok = Tokenizer.from_gguf_metadata(f.metadata)
    tokens = tok.encode(read_wikitext(wikitext_path()), parse_special=False)
    base = scored_logits(path, tokens, n_chunks, n_batch=CTX, n_ubatch=CTX)
    for label, kw in [("n_ubatch=64", dict(n_batch=CTX, n_ubatch=64)),
                      ("f32 KV cache", dict(n_batch=CTX, n_ubatch=CTX, type_k=0, type_v=0))]:
        other = scored_logits(path, tokens, n_chunks, **kw)
        d = np.abs(base - other)
        print(f"{label}: top-1 agreement with the default {np.mean(base.argmax(1) == other.argmax(1)):.2%}, "
              f"mean |logit difference| {d.mean():.3f}, max {d.max():.3f}")


if __name__ == "__main__":
    main()
