"""Calibration text for GPTQ / AWQ: random windows of seq_len tokens, drawn with a fixed seed from the
shipped C4 excerpt (or a user file), never from the evaluation text."""

from __future__ import annotations

import numpy as np

from ..model.default import read_calibration_documents


def calibration_windows(tokenizer, n_samples: int, seq_len: int, seed: int = 0,
                        text_path: str | None = None) -> np.ndarray:
    """(n_samples, seq_len) int64 token windows.

    Like the GPTQ/AWQ reference scripts: pick a random document long enough for one window, then a random
    start inside it. Documents shorter than seq_len are concatenated (separated by a newline) so a short
    --text file or the short C4 documents still give full windows. Each window starts with BOS when the
    vocabulary adds one, as the model saw text in training."""
    if n_samples < 1:
        raise ValueError(f"[calibration] samples must be >= 1, got {n_samples}")
    if seq_len < 8:
        raise ValueError(f"[calibration] seq_len must be >= 8, got {seq_len}")
    docs = read_calibration_documents(text_path)
    bos = tokenizer.bos_id if getattr(tokenizer, "add_bos", False) else None
    body = seq_len - (1 if bos is not None else 0)
    # C4 documents are short (a few hundred tokens): join neighbours into runs of at least body tokens
    runs, cur = [], []
    for d in docs:
        cur.extend(tokenizer.encode(d if not cur else "\n\n" + d, add_bos=False, parse_special=False))
        if len(cur) >= body:
            runs.append(np.asarray(cur, np.int64))
            cur = []
    if not runs:
        have = len(cur)
        raise ValueError(f"[calibration] the calibration text has {have} tokens, fewer than one window of {seq_len}")
    n_windows = sum(len(r) - body + 1 for r in runs)
    if n_windows < n_samples:
        raise ValueError(f"[calibration] the calibration text gives {n_windows} distinct windows of {seq_len} "
                         f"tokens, fewer than the {n_samples} samples asked")
    rng = np.random.default_rng(seed)
    out = np.empty((n_samples, seq_len), np.int64)
    for s in range(n_samples):
        r = runs[int(rng.integers(len(runs)))]
        start = int(rng.integers(len(r) - body + 1))
        window = r[start:start + body]
        out[s] = np.concatenate([[bos], window]) if bos is not None else window
    return out
