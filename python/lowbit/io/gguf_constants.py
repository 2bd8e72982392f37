"""gguf-py's constants (GGUFValueType, GGML_QUANT_SIZES, Keys, ...) without importing the gguf package.

`import gguf` runs the package's __init__, which imports its reader, writer, vocab, metadata (yaml) and
tensor-mapping modules too: about 5 MB of resident memory in every lowbit process that only reads a
model, where the 2,000-line constants module alone takes 0.8 MB. lowbit's reader needs only the
constants, so it loads that one file of the installed package. Once the package itself is imported
(the converter and the HF exporters use its other modules), its own constants module is used.

The two modules are the same source, but not the same objects: their enum members compare equal
(GGUFValueType is an IntEnum), `is` and isinstance do not hold across them.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from types import ModuleType


@functools.lru_cache(maxsize=None)
def gguf_constants() -> ModuleType:
    loaded = sys.modules.get("gguf.constants")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("gguf")  # finds the package without running its __init__
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    path = os.path.join(locations[0], "constants.py") if locations else ""
    if not os.path.isfile(path):
        raise ImportError("lowbit needs llama.cpp's gguf-py package (pip install gguf)")
    mod_spec = importlib.util.spec_from_file_location("lowbit.io._gguf_constants", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod
