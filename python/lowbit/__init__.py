"""lowbit: GGUF-exact quantization kernels for running big language models on small hardware.

numpy in, numpy out::

    import numpy as np, lowbit
    qt = lowbit.quantize(np.random.randn(4096, 4096).astype(np.float32), "q4_k")
    w = lowbit.dequantize(qt)          # float32 (4096, 4096)
"""

from .errors import CheckpointError, GGUFError, SafetensorsError
from .group import GroupQuantizedTensor
from .ops import QuantizedTensor, RepackedTensor, cpu_info, dequantize, has_cuda, matmul, quantize, type_info, types

__version__ = "0.1.0"

def __getattr__(name: str):
    # lowbit.quantize_model (llama.cpp's mixes) imports the GGUF layer, so only when asked for
    if name == "quantize_model":
        from .mixes import quantize_model

        return quantize_model
    raise AttributeError(f"module 'lowbit' has no attribute {name!r}")


__all__ = ["CheckpointError", "GGUFError", "SafetensorsError", "GroupQuantizedTensor", "QuantizedTensor", "RepackedTensor", "cpu_info", "dequantize",
           "has_cuda", "matmul", "quantize", "quantize_model", "type_info", "types", "__version__"]
