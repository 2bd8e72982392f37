"""The model runtime: tokenizer (tokenizer.py), the Llama-family forward pass (llama.py), sampling,
generation, perplexity and bench (runtime.py), and the built-in defaults (default.py)."""
