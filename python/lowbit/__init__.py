"""lowbit: GGUF-exact quantization kernels for running big language models on small hardware.

numpy in, numpy out::

    import numpy as np, lowbit
    qt = lowbit.quantize(np.random.randn(4096, 4096).astype(np.float32), "q4_k")
    w = lowbit.dequantize(qt)          # float32 (4096, 4096)
"""

from .errors import CheckpointError, GGUFError, SafetensorsError
from .ops import QuantizedTensor, cpu_info, dequantize, has_cuda, matmul, quantize, type_info, types

__version__ = "0.1.0"

__all__ = ["CheckpointError", "GGUFError", "SafetensorsError", "QuantizedTensor", "cpu_info", "dequantize",
           "has_cuda", "matmul", "quantize", "type_info", "types", "__version__"]
