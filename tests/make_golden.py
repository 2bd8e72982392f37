"""Regenerate tests/golden/ from ggml itself (llama-cpp-python's libggml through ctypes).

    python tests/make_golden.py

Writes golden/inputs.npz (the inputs, so the suite does not depend on numpy's RNG stream) and
golden/ggml.json: for every type, input family and imatrix setting, the sha256 of ggml's quantized
bytes and of ggml's dequantized floats. The suite then checks lowbit against these without the
oracle installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ggml_oracle  # noqa: E402
from inputs import DISTRIBUTIONS, make_imatrix, make_input  # noqa: E402

ROWS, K = 4, 512          # K is a multiple of every block size
ROWS_SMALL, K_SMALL = 3, 96  # an odd number of 32-blocks, for the 32-block types


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def oracle_quantize(row: dict, x: np.ndarray, im) -> np.ndarray:
    if row["is_activation"]:
        return ggml_oracle.quantize_ref(row["gguf_id"], x)
    return ggml_oracle.quantize_chunk(row["gguf_id"], x, im)


def cases(types: list[dict]):
    """(case id, type row, input name, imatrix name or None)."""
    for row in types:
        for dist in DISTRIBUTIONS:
            inputs = [f"{dist}_{ROWS}x{K}"]
            if row["block_size"] == 32:
                inputs.append(f"{dist}_{ROWS_SMALL}x{K_SMALL}")
            for name in inputs:
                ims = [None]
                if row["has_imatrix"]:
                    ims.append("imatrix_" + name.rsplit("x", 1)[1])
                for im in ims:
                    yield f"{row['name']}/{name}/{'imatrix' if im else 'plain'}", row, name, im


def make_inputs() -> dict[str, np.ndarray]:
    arrays = {}
    for dist in DISTRIBUTIONS:
        arrays[f"{dist}_{ROWS}x{K}"] = make_input(dist, ROWS, K)
        arrays[f"{dist}_{ROWS_SMALL}x{K_SMALL}"] = make_input(dist, ROWS_SMALL, K_SMALL)
    arrays[f"imatrix_{K}"] = make_imatrix(K)
    arrays[f"imatrix_{K_SMALL}"] = make_imatrix(K_SMALL)
    return arrays


def main() -> None:
    import lowbit

    if not ggml_oracle.available():
        sys.exit("llama-cpp-python is not installed: pip install llama-cpp-python")
    arrays = make_inputs()
    out = {}
    for case, row, name, im in cases(lowbit.types()):
        x = arrays[name]
        q = oracle_quantize(row, x, None if im is None else arrays[im])
        entry = {"bytes": sha(q)}
        if ggml_oracle.has_to_float(row["gguf_id"]):
            entry["floats"] = sha(ggml_oracle.dequantize(row["gguf_id"], q, x.shape[1]))
        out[case] = entry
    os.makedirs(os.path.join(HERE, "golden"), exist_ok=True)
    np.savez_compressed(os.path.join(HERE, "golden", "inputs.npz"), **arrays)
    with open(os.path.join(HERE, "golden", "ggml.json"), "w") as f:
        json.dump({"source": "ggml via llama-cpp-python " + _llama_version(), "cases": out}, f, indent=1, sort_keys=True)
    print(f"wrote {len(out)} cases")


def _llama_version() -> str:
    try:
        import llama_cpp

        return llama_cpp.__version__
    except Exception:  # noqa: BLE001 - only a label
        return "?"


if __name__ == "__main__":
    main()
