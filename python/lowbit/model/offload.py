"""Partial GPU offload (llama.cpp's --n-gpu-layers): the weights of the first N blocks move to the GPU
once, and LlamaModel's matmuls with them run there; with N >= the layer count the output projection
moves too. Activations stay numpy between matmuls (copied to the GPU and back around each one) and the
KV cache and attention stay on the CPU: the GPU-resident activation path is not built yet.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_LAYER_MATRICES = ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")


def offload_layers(model, n_gpu_layers: int, device: str = "cuda") -> int:
    """Move the weight matrices of blocks 0..n_gpu_layers-1 of a LlamaModel to `device`.

    Returns the number of blocks moved. Raises RuntimeError (from QuantizedTensor.to) when CUDA is
    not available, ValueError for a negative count."""
    if isinstance(n_gpu_layers, bool) or not isinstance(n_gpu_layers, int):
        raise TypeError(f"[offload] n_gpu_layers must be an int, got {type(n_gpu_layers).__name__}")
    if n_gpu_layers < 0:
        raise ValueError(f"[offload] n_gpu_layers must be >= 0, got {n_gpu_layers}")
    n = min(n_gpu_layers, model.cfg.n_layer)
    if n == 0:
        return 0
    moved_bytes = 0
    for i in range(n):
        lw = model.w.layers[i]
        for name in _LAYER_MATRICES:
            w = getattr(lw, name)
            if w.device == "cpu":
                setattr(lw, name, w.to(device))
                moved_bytes += w.nbytes
    if n_gpu_layers >= model.cfg.n_layer and model.w.output.device == "cpu":
        # A tied output stays shared on the CPU for the embedding lookup; the GPU gets its own copy.
        model.w.output = model.w.output.to(device)
        moved_bytes += model.w.output.nbytes
    log.info("offloaded %d of %d blocks to %s (%.1f MiB of weights)", n, model.cfg.n_layer, device,
             moved_bytes / 2**20)
    return n
