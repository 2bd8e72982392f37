"""lowbit's own exception types."""


class GGUFError(ValueError):
    """A GGUF file is malformed, truncated or hostile; the message names the file and the byte offset.

    A subclass of ValueError, so code that already catches ValueError for bad input keeps working.
    """
