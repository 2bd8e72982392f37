"""Calibrated low-bit quantization: GPTQ and AWQ over lowbit's forward pass, layer by layer."""
