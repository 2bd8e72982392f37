"""lowbit's own exception types."""


class GGUFError(ValueError):
    """A GGUF file is malformed, truncated or hostile; the message names the file and the byte offset.

    A subclass of ValueError, so code that already catches ValueError for bad input keeps working.
    """


class SafetensorsError(ValueError):
    """A safetensors file is malformed, truncated or hostile (header too large, offsets outside the
    file, dtype and shape disagreeing with the byte count); the message names the file."""


class CheckpointError(ValueError):
    """A Hugging Face checkpoint directory cannot be read or converted: missing or inconsistent files,
    an unsupported architecture, pickled weights (never unpickled)."""
