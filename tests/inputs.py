"""The input families every quantization test uses (DESIGN.md: random normal, heavy tails, zeros,
constant rows, tiny and huge magnitudes, one outlier, ties). Deterministic for a given seed."""

from __future__ import annotations

import numpy as np

DISTRIBUTIONS = (
    "normal",
    "heavy_tailed",
    "zeros",
    "constant_rows",
    "tiny",
    "huge",
    "one_outlier",
    "integers",
    "positive",
)


def make_input(dist: str, rows: int, k: int, seed: int = 0) -> np.ndarray:
    """A (rows, k) float32 matrix of the named family."""
    rng = np.random.default_rng([seed, DISTRIBUTIONS.index(dist), rows, k])
    if dist == "normal":
        x = rng.standard_normal((rows, k))
    elif dist == "heavy_tailed":
        x = np.clip(rng.standard_t(1.5, (rows, k)), -1e6, 1e6)
    elif dist == "zeros":
        x = np.zeros((rows, k))
    elif dist == "constant_rows":
        levels = np.array([1.0, -2.5, 0.125, 3.0, -7.0, 1e-3, 42.0])
        x = np.repeat(levels[np.arange(rows) % len(levels)][:, None], k, axis=1)
    elif dist == "tiny":
        x = rng.standard_normal((rows, k)) * 1e-30
    elif dist == "huge":
        x = rng.standard_normal((rows, k)) * 1e30
    elif dist == "one_outlier":
        x = rng.standard_normal((rows, k)) * 0.02
        x[np.arange(rows), rng.integers(0, k, rows)] = 25.0 * np.where(rng.random(rows) < 0.5, -1, 1)
    elif dist == "integers":
        x = rng.integers(-8, 9, (rows, k)).astype(np.float64)
    elif dist == "positive":
        x = rng.random((rows, k)) + 0.5
    else:
        raise ValueError(dist)
    return np.ascontiguousarray(x, dtype=np.float32)


def make_imatrix(k: int, seed: int = 0) -> np.ndarray:
    """Importance weights like llama-imatrix's (mean squared activations): positive, skewed, some zeros."""
    rng = np.random.default_rng([seed, 1234, k])
    im = rng.lognormal(0.0, 1.5, k)
    im[rng.random(k) < 0.05] = 0.0
    return im.astype(np.float32)
