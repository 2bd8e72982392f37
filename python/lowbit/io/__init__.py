"""File formats: GGUF read (validated, zero-copy) and write."""

from .gguf import GGUFFile, GGUFValue, LazyTensor, StringArray, TensorInfo, open_gguf, write_gguf

__all__ = ["GGUFFile", "GGUFValue", "LazyTensor", "StringArray", "TensorInfo", "open_gguf", "write_gguf"]
