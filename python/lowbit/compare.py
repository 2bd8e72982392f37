"""`lowbit compare`: which format should I run? Quantize one model to several llama.cpp mixes and measure,
on this machine and the same tokens, what each costs and keeps: file size, bits per weight, perplexity,
KL divergence and top-1 agreement against the unquantized model, prompt and generation tokens/s.

The reference is the model in F32: the input itself when it is F32/F16/BF16, else the input dequantized
(for SmolLM2 that is the shipped Q4_1 model expanded, the only unquantized form there is).
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Callable

import numpy as np

DEFAULT_TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K"]
_FLOAT_FILE_TYPES = {0, 1, 32}  # general.file_type: ALL_F32, MOSTLY_F16, MOSTLY_BF16


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    mx = x.max(axis=1, keepdims=True)
    return x - (np.log(np.exp(x - mx).sum(axis=1, keepdims=True)) + mx)


def _chunks(tokens: list[int], n_ctx: int, n_chunks: int, bos_id: int | None) -> list[list[int]]:
    n = min(n_chunks, len(tokens) // n_ctx)
    if n < 1:
        raise ValueError(f"[compare] the text has {len(tokens)} tokens, fewer than one chunk of {n_ctx}")
    out = []
    for c in range(n):
        chunk = list(tokens[c * n_ctx:(c + 1) * n_ctx])
        if bos_id is not None:
            chunk[0] = bos_id
        out.append(chunk)
    return out


def _score(path: str, chunks: list[list[int]], targets: list[np.ndarray], ref_logp: list[np.ndarray] | None,
           threads: int | None, n_prompt: int, n_gen: int) -> tuple[dict, list[np.ndarray]]:
    """Perplexity (llama.cpp's: second half of each chunk), KL(ref || model) and top-1 agreement on the
    same positions, then pp/tg tokens/s. Returns the row and this model's log-probabilities."""
    from .io.gguf import open_gguf
    from .model.llama import LlamaModel
    from .model.runtime import bench

    model = LlamaModel.from_gguf(open_gguf(path), threads=threads)
    n_ctx = len(chunks[0])
    first = n_ctx // 2
    cache = model.new_cache(n_ctx)
    nll, kl, same, count, logps = 0.0, 0.0, 0, 0, []
    for c, chunk in enumerate(chunks):
        logp = _log_softmax(model.forward(chunk, 0, cache, logits_from=first)[:-1])
        nll -= float(logp[np.arange(len(targets[c])), targets[c]].sum())
        if ref_logp is not None:
            ref = ref_logp[c]
            kl += float((np.exp(ref) * (ref - logp)).sum())
            same += int((ref.argmax(axis=1) == logp.argmax(axis=1)).sum())
        count += len(targets[c])
        logps.append(logp.astype(np.float32))
    speed = bench(model, n_prompt, n_gen) if n_prompt or n_gen else {"pp": None, "tg": None}
    row = {"ppl": math.exp(nll / count), "kld": kl / count if ref_logp is not None else 0.0,
           "top1_agreement": same / count if ref_logp is not None else 1.0,
           "pp_tok_s": speed["pp"], "tg_tok_s": speed["tg"], "scored_tokens": count}
    return row, logps


def compare_types(model_path: str, types: list[str] | None = None, *, imatrix: str | None = None,
                  text_path: str | None = None, n_ctx: int = 512, n_chunks: int = 4, n_prompt: int = 128,
                  n_gen: int = 32, threads: int | None = None, workdir: str | None = None,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Quantize model_path to each of `types` (llama.cpp mix names) and measure each against the F32
    reference on the same tokens. Returns {"reference": row, "rows": [row per type], ...}; a type that
    cannot be made (e.g. a mix needing an imatrix) gets a row with "error"."""
    from .io.gguf import open_gguf
    from .mixes import MIXES, quantize_model
    from .model.default import default_text_path
    from .model.tokenizer import Tokenizer

    types = [t.upper() for t in (types or DEFAULT_TYPES)]
    unknown = [t for t in types if t not in MIXES]
    if unknown:
        raise ValueError(f"[compare] unknown types {unknown}; valid: {sorted(MIXES)}")
    if n_chunks < 1 or n_ctx < 16:
        raise ValueError(f"[compare] need chunks >= 1 and ctx >= 16, got {n_chunks} and {n_ctx}")
    say = progress or (lambda msg: None)
    src = open_gguf(model_path)
    tok = Tokenizer.from_gguf_metadata(src.metadata)
    with open(text_path or default_text_path(), encoding="utf-8") as fh:
        tokens = tok.encode(fh.read(), add_bos=None, parse_special=False)
    chunks = _chunks(tokens, n_ctx, n_chunks, tok.bos_id if tok.add_bos else None)
    first = n_ctx // 2
    targets = [np.asarray(tokens[c * n_ctx + first + 1:(c + 1) * n_ctx]) for c in range(len(chunks))]
    n_params = sum(int(np.prod(t.shape)) for t in src.tensors.values())

    with tempfile.TemporaryDirectory(prefix="lowbit-compare-", dir=workdir) as tmp:
        ref_path = model_path
        if int(src.metadata.get("general.file_type", -1)) not in _FLOAT_FILE_TYPES:
            say("reference: F32")
            ref_path = os.path.join(tmp, "reference-f32.gguf")
            quantize_model(model_path, ref_path, "F32", threads=threads)
        say("measuring the reference")
        ref_row, ref_logp = _score(ref_path, chunks, targets, None, threads, n_prompt, n_gen)
        ref_row.update(type="F32 (reference)" if ref_path != model_path else "input", bytes=os.path.getsize(ref_path),
                       bits_per_weight=8 * os.path.getsize(ref_path) / n_params)
        rows = []
        for t in types:
            say(f"quantizing to {t}")
            out = os.path.join(tmp, f"{t}.gguf")
            try:
                rep = quantize_model(ref_path, out, t, threads=threads, imatrix=imatrix)
            except ValueError as e:
                rows.append({"type": t, "error": str(e)})
                continue
            say(f"measuring {t}")
            row, _ = _score(out, chunks, targets, ref_logp, threads, n_prompt, n_gen)
            row.update(type=t, bytes=os.path.getsize(out), bits_per_weight=rep["bits_per_weight"])
            rows.append(row)
            os.remove(out)
    return {"model": model_path, "reference": ref_row, "rows": rows, "chunks": len(chunks), "ctx": n_ctx,
            "n_prompt": n_prompt, "n_gen": n_gen, "imatrix": imatrix}


def format_table(res: dict) -> str:
    head = "| type | size MiB | bits/weight | ppl | KL div | top-1 same | pp tok/s | tg tok/s |"
    lines = [head, "|" + "---|" * 8]

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    for r in [res["reference"]] + res["rows"]:
        if "error" in r:
            lines.append(f"| {r['type']} | {r['error']} |")
            continue
        lines.append(f"| {r['type']} | {r['bytes'] / 2**20:.1f} | {r['bits_per_weight']:.2f} | {r['ppl']:.4f} | "
                     f"{r['kld']:.5f} | {100 * r['top1_agreement']:.1f}% | {num(r['pp_tok_s'], '.0f')} | "
                     f"{num(r['tg_tok_s'], '.1f')} |")
    return "\n".join(lines)


def plot(res: dict, path: str) -> None:
    """Quality (perplexity) against size, each point labelled with its type and tokens/s. Needs
    matplotlib (`pip install "lowbit[plot]"`); the PNG is written to a temporary name and renamed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ValueError("[compare] --plot needs matplotlib: pip install matplotlib") from e
    rows = [r for r in [res["reference"]] + res["rows"] if "error" not in r]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot([r["bytes"] / 2**20 for r in rows], [r["ppl"] for r in rows], "o")
    for r in rows:
        label = f"{r['type']}" + (f"\n{r['tg_tok_s']:.0f} tok/s" if r["tg_tok_s"] else "")
        ax.annotate(label, (r["bytes"] / 2**20, r["ppl"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("file size (MiB)")
    ax.set_ylabel(f"perplexity ({res['chunks']} x {res['ctx']} tokens)")
    ax.set_title(os.path.basename(res["model"]))
    ax.grid(alpha=0.3)
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
