import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import ggml_oracle  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if ggml_oracle.available():
        return
    skip = pytest.mark.skip(reason="ggml oracle (llama-cpp-python) is not installed")
    for item in items:
        if "oracle" in item.keywords:
            item.add_marker(skip)
