"""The sequential (layer-by-layer) calibration driver and the calibrated model it produces.

Block i sees the calibration samples as the already-quantized blocks 0..i-1 transform them, so every
block's quantization corrects for the error of those before it. Only one block's activations are held:
X (samples, seq_len, n_embd) goes in, the quantized block's output replaces it. Weights are expanded
to float one block at a time from the source model (a GGUF file stays memory-mapped).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import ops
from ..model import llama
from .block import INPUT_OF, LINEARS, FloatLayer, block_forward
from .grid import QuantizedLinear

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (layers done, layers total)
# quantize_block(i, float layer, block inputs X (S, T, d), cos, sin) -> quantized linears by name, with the
# (possibly rescaled, for AWQ) float layer whose linears are the dequantized quantized weights
BlockQuantizer = Callable[[int, FloatLayer, np.ndarray, np.ndarray, np.ndarray],
                          tuple[dict[str, "QuantizedLinear | ops.QuantizedTensor"], FloatLayer]]


@dataclass
class CalibratedModel:
    """The result: per layer the quantized linears (integer group grids, or GGUF tensors) and the float
    layer they dequantize to (norms included, which AWQ rescales); the rest as in the source model."""
    source: llama.LlamaModel
    source_file: object                              # the open source GGUFFile (metadata, other tensors)
    quantized: list[dict] = field(default_factory=list)
    layers: list[FloatLayer] = field(default_factory=list)
    info: dict = field(default_factory=dict)          # method, settings, timings

    @property
    def cfg(self) -> llama.Config:
        return self.source.cfg

    def to_llama_model(self, threads: int | None = None) -> llama.LlamaModel:
        """A runnable model with every linear as the f32 expansion of its quantized weights (fake quant):
        what perplexity is measured on."""
        return fake_quant_model(self.source, self.layers, threads)


def float_tensor(a: np.ndarray) -> ops.QuantizedTensor:
    a = np.ascontiguousarray(a, np.float32)
    return ops.QuantizedTensor(a.view(np.uint8).reshape(-1), "f32", a.shape)


def fake_quant_model(source: llama.LlamaModel, layers: list[FloatLayer] | None,
                     threads: int | None = None) -> llama.LlamaModel:
    """The source model with embeddings/output as f32 and the given float layers (all layers expanded
    from the source when None: the f32 reference)."""
    w = source.w
    tok = float_tensor(w.tok_embd.dequantize())
    out = tok if w.output is w.tok_embd else float_tensor(w.output.dequantize())
    if layers is None:
        layers = [FloatLayer.from_layer(lw) for lw in w.layers]
    weights = llama.Weights(tok_embd=tok, output_norm=w.output_norm, output=out,
                            layers=[fl.to_layer() for fl in layers], rope_freqs=w.rope_freqs)
    return llama.LlamaModel(source.cfg, weights, threads)


def embed_samples(model: llama.LlamaModel, tokens: np.ndarray) -> np.ndarray:
    """tokens (S, T) -> block-0 inputs (S, T, n_embd) f32."""
    return np.stack([model.embed(t) for t in tokens]).astype(np.float32)


SAMPLE_BATCH = 8  # sequences per block call: BLAS-sized matmuls without a large activation peak


def run_blocks(cfg: llama.Config, lw: FloatLayer, X: np.ndarray, cos, sin, hook=None) -> np.ndarray:
    """The block on every sample: X (S, T, d) -> (S, T, d), SAMPLE_BATCH sequences at a time."""
    return np.concatenate([block_forward(cfg, lw, X[s:s + SAMPLE_BATCH], cos, sin, hook)
                           for s in range(0, len(X), SAMPLE_BATCH)])


def accumulate_hessians(cfg: llama.Config, lw: FloatLayer, X: np.ndarray, cos, sin) -> dict[str, np.ndarray]:
    """H = 2/N sum_t x_t x_t^T of every linear's input over all N calibration tokens, in float64 (each
    batch's product in float32 as BLAS does it, the running sum in float64)."""
    sums: dict[str, np.ndarray] = {}
    count = [0]

    def hook(name: str, a: np.ndarray) -> None:
        a = np.ascontiguousarray(a, np.float32).reshape(-1, a.shape[-1])
        p = (a.T @ a).astype(np.float64)
        sums[name] = sums[name] + p if name in sums else p
        if name == "attn_in":
            count[0] += a.shape[0]

    run_blocks(cfg, lw, X, cos, sin, hook)
    return {k: v * (2.0 / count[0]) for k, v in sums.items()}


def calibrate_sequential(model: llama.LlamaModel, source_file, tokens: np.ndarray,
                         quantize_block: BlockQuantizer, progress: Progress | None = None,
                         info: dict | None = None, float_inputs: bool = False) -> CalibratedModel:
    """Run quantize_block on each block in turn with the inputs the quantized earlier blocks produce
    (float_inputs: the inputs the float earlier blocks produce instead, as AWQ's reference code does)."""
    cfg = model.cfg
    T = tokens.shape[1]
    if T > cfg.n_ctx_train:
        raise ValueError(f"[calibrate] seq_len {T} is longer than the model's context {cfg.n_ctx_train}")
    cos, sin = llama.rope_angles(cfg, np.arange(T), model.w.rope_freqs)
    res = CalibratedModel(model, source_file, info=dict(info or {}))
    X = embed_samples(model, tokens)
    t0 = time.perf_counter()
    for i in range(cfg.n_layer):
        lw = FloatLayer.from_layer(model.w.layers[i])
        qs, lq = quantize_block(i, lw, X, cos, sin)
        X = run_blocks(cfg, lw if float_inputs else lq, X, cos, sin)
        if not np.all(np.isfinite(X)):
            raise ValueError(f"[calibrate] block {i} produced non-finite activations")
        res.quantized.append(qs)
        res.layers.append(lq)
        log.info("block %d/%d quantized (%.1f s)", i + 1, cfg.n_layer, time.perf_counter() - t0)
        if progress:
            progress(i + 1, cfg.n_layer)
    res.info["seconds"] = time.perf_counter() - t0
    return res


def quantize_without_data(model: llama.LlamaModel, source_file,
                          quantize_linear: Callable[[str, np.ndarray], "QuantizedLinear | ops.QuantizedTensor"],
                          progress: Progress | None = None, info: dict | None = None) -> CalibratedModel:
    """Round-to-nearest style methods: each linear on its own, no activations."""
    res = CalibratedModel(model, source_file, info=dict(info or {}))
    for i, lw_src in enumerate(model.w.layers):
        lw = FloatLayer.from_layer(lw_src)
        qs = {}
        for name in LINEARS:
            qs[name] = quantize_linear(name, getattr(lw, name))
            setattr(lw, name, qs[name].dequantize())
        res.quantized.append(qs)
        res.layers.append(lw)
        if progress:
            progress(i + 1, model.cfg.n_layer)
    return res


__all__ = ["CalibratedModel", "calibrate_sequential", "quantize_without_data", "accumulate_hessians",
           "run_blocks", "embed_samples", "fake_quant_model", "float_tensor", "INPUT_OF"]
