"""The model runtime: tokenizer (tokenizer.py), and the forward pass and sampling to come."""
