"""What users run on a model: sampling and generation, perplexity (llama.cpp's method), and the
prompt / generation speed measurement of llama-bench."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from .llama import LlamaModel


@dataclass
class SamplingParams:
    temperature: float = 0.8  # 0 means greedy
    top_k: int = 40           # 0 disables
    top_p: float = 0.95       # 1 disables
    seed: int | None = None

    def validate(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"[sampling] temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"[sampling] top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"[sampling] top_p must be in (0, 1], got {self.top_p}")


class Sampler:
    """Greedy at temperature 0; otherwise top-k, then top-p (nucleus), then temperature, like
    llama.cpp's default chain."""

    def __init__(self, params: SamplingParams):
        params.validate()
        self.p = params
        self.rng = np.random.default_rng(params.seed)

    def __call__(self, logits: np.ndarray) -> int:
        if self.p.temperature == 0:
            return int(np.argmax(logits))
        idx = np.argsort(-logits, kind="stable")
        if self.p.top_k > 0:
            idx = idx[: self.p.top_k]
        z = logits[idx].astype(np.float64)
        probs = np.exp(z - z.max())
        probs /= probs.sum()
        if self.p.top_p < 1:
            keep = int(np.searchsorted(np.cumsum(probs), self.p.top_p) + 1)
            idx, z = idx[:keep], z[:keep]
        z = z / self.p.temperature
        probs = np.exp(z - z.max())
        probs /= probs.sum()
        return int(idx[self.rng.choice(len(idx), p=probs)])


def generate(model: LlamaModel, prompt_tokens: list[int], n_predict: int, sampler: Sampler,
             stop_tokens: set[int] = frozenset(), n_batch: int = 512) -> Iterator[int]:
    """Yield up to n_predict new tokens after the prompt (processed in batches of n_batch)."""
    if not prompt_tokens:
        raise ValueError("[generate] the prompt has no tokens")
    n_ctx = len(prompt_tokens) + n_predict
    cache = model.new_cache(n_ctx)
    pos = 0
    logits = None
    for s in range(0, len(prompt_tokens), n_batch):
        chunk = prompt_tokens[s: s + n_batch]
        logits = model.forward(chunk, pos, cache)[-1]
        pos += len(chunk)
    for _ in range(n_predict):
        tok = sampler(logits)
        yield tok
        if tok in stop_tokens or pos >= n_ctx:
            return
        logits = model.forward([tok], pos, cache)[-1]
        pos += 1


@dataclass
class PerplexityResult:
    ppl: float
    nll: float
    n_chunks: int
    n_ctx: int
    n_scored: int
    top1: np.ndarray  # (n_scored,) the model's argmax at each scored position (for agreement checks)


def perplexity(model: LlamaModel, tokens: list[int], n_ctx: int = 512, n_chunks: int | None = None,
               bos_id: int | None = None, progress: Callable[[int, int, float], None] | None = None
               ) -> PerplexityResult:
    """llama.cpp's perplexity: cut the tokens into chunks of n_ctx, evaluate each from an empty cache
    (its first token replaced by BOS when the vocabulary adds one), and score only the second half of
    each chunk: positions first = n_ctx/2 .. n_ctx-2 predict tokens first+1 .. n_ctx-1."""
    if n_ctx < 16:
        raise ValueError(f"[perplexity] ctx must be >= 16, got {n_ctx}")
    n_max = len(tokens) // n_ctx
    if n_max < 1:
        raise ValueError(f"[perplexity] the text has {len(tokens)} tokens, fewer than one chunk of {n_ctx}")
    n = n_max if n_chunks is None else min(n_chunks, n_max)
    first = n_ctx // 2
    cache = model.new_cache(n_ctx)
    nll, count, top1 = 0.0, 0, []
    for c in range(n):
        chunk = list(tokens[c * n_ctx:(c + 1) * n_ctx])
        if bos_id is not None:
            chunk[0] = bos_id
        logits = model.forward(chunk, 0, cache, logits_from=first)  # (n_ctx - first, n_vocab)
        logits = logits[:-1].astype(np.float64)
        targets = np.asarray(tokens[c * n_ctx + first + 1:(c + 1) * n_ctx])
        mx = logits.max(axis=1, keepdims=True)
        logsum = np.log(np.exp(logits - mx).sum(axis=1)) + mx[:, 0]
        nll += float(np.sum(logsum - logits[np.arange(len(targets)), targets]))
        count += len(targets)
        top1.append(np.argmax(logits, axis=1))
        if progress:
            progress(c + 1, n, math.exp(nll / count))
    return PerplexityResult(ppl=math.exp(nll / count), nll=nll / count, n_chunks=n, n_ctx=n_ctx,
                            n_scored=count, top1=np.concatenate(top1))


def bench(model: LlamaModel, n_prompt: int = 512, n_gen: int = 128, reps: int = 1, seed: int = 0) -> dict:
    """llama-bench's two numbers: prompt processing (one batch of n_prompt tokens) and generation
    (n_gen single-token steps), in tokens per second, best of `reps`, random token ids."""
    rng = np.random.default_rng(seed)
    pp_best, tg_best = 0.0, 0.0
    for _ in range(reps):
        cache = model.new_cache(max(n_prompt, 1) + n_gen)
        if n_prompt > 0:
            toks = rng.integers(0, model.cfg.n_vocab, n_prompt)
            t0 = time.perf_counter()
            model.forward(toks, 0, cache)
            pp_best = max(pp_best, n_prompt / (time.perf_counter() - t0))
        if n_gen > 0:
            cache = model.new_cache(n_gen + 1)
            tok = int(rng.integers(0, model.cfg.n_vocab))
            t0 = time.perf_counter()
            for i in range(n_gen):
                model.forward([tok], i, cache)
            tg_best = max(tg_best, n_gen / (time.perf_counter() - t0))
    return {"pp": pp_best, "tg": tg_best, "n_prompt": n_prompt, "n_gen": n_gen}
