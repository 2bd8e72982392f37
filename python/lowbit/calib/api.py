"""The calibrated quantization methods on a whole model: RTN, GPTQ, GPTQ into a GGUF type, and the
llama.cpp-style imatrix quantization it is compared with (AWQ lives in awq.py)."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..model import llama
from . import gptq as gptq_mod
from .block import GGUF_NAME, INPUT_OF, LINEARS, FloatLayer
from .grid import GridSpec, rtn
from .sequential import CalibratedModel, Progress, accumulate_hessians, calibrate_sequential, quantize_without_data


def quantize_rtn(model: llama.LlamaModel, source_file, spec: GridSpec,
                 progress: Progress | None = None) -> CalibratedModel:
    """Round-to-nearest on the integer group grid: the baseline, no calibration data."""
    info = {"method": "rtn", "bits": spec.bits, "group_size": spec.group_size, "sym": spec.sym}
    return quantize_without_data(model, source_file, lambda name, w: rtn(spec, w), progress, info)


def quantize_gptq(model: llama.LlamaModel, source_file, tokens: np.ndarray, spec: GridSpec,
                  act_order: bool = False, static_groups: bool = True, damp: float = 0.01,
                  progress: Progress | None = None) -> CalibratedModel:
    """GPTQ on every linear of every block, sequentially. tokens: (samples, seq_len) calibration windows."""
    cfg = model.cfg

    def block(i, lw: FloatLayer, X, cos, sin):
        H = accumulate_hessians(cfg, lw, X, cos, sin)
        out, qs = lw.copy(), {}
        for name in LINEARS:
            qs[name] = gptq_mod.gptq(getattr(lw, name), H[INPUT_OF[name]], spec, act_order=act_order,
                                     static_groups=static_groups, damp=damp)
            setattr(out, name, qs[name].dequantize())
        return qs, out

    info = {"method": "gptq", "bits": spec.bits, "group_size": spec.group_size, "sym": spec.sym,
            "act_order": act_order, "static_groups": static_groups, "damp": damp,
            "samples": int(tokens.shape[0]), "seq_len": int(tokens.shape[1])}
    return calibrate_sequential(model, source_file, tokens, block, progress, info)


def quantize_gguf_calibrated(model: llama.LlamaModel, source_file, tokens: np.ndarray, qtype: str | dict[str, str],
                             method: str = "gptq", damp: float = 0.01,
                             progress: Progress | None = None) -> CalibratedModel:
    """Every block linear straight into a GGUF type (qtype: one type for all, or a type per GGUF tensor
    name such as "blk.0.ffn_down.weight", e.g. the types a llama.cpp mix gives each tensor), with the
    calibration activations used either way:
    method "gptq": error-compensated (gptq_into_gguf, diag(H) as the per-block importance);
    method "imatrix": llama.cpp's importance-weighted rounding, imatrix = mean x^2 per input column
    (what llama-imatrix collects), no error propagation."""
    if method not in ("gptq", "imatrix"):
        raise ValueError(f"[gguf-calibrated] method must be 'gptq' or 'imatrix', got {method!r}")
    cfg = model.cfg
    per_tensor = dict(qtype) if isinstance(qtype, dict) else None
    if per_tensor is not None:
        missing = [f"blk.{i}.{GGUF_NAME[n]}.weight" for i in range(cfg.n_layer) for n in LINEARS
                   if f"blk.{i}.{GGUF_NAME[n]}.weight" not in per_tensor]
        if missing:
            raise ValueError(f"[gguf-calibrated] no type given for {missing[0]} ({len(missing)} block linears missing)")

    def block(i, lw: FloatLayer, X, cos, sin):
        H = accumulate_hessians(cfg, lw, X, cos, sin)
        out, qs = lw.copy(), {}
        for name in LINEARS:
            W, h = getattr(lw, name), H[INPUT_OF[name]]
            t = per_tensor[f"blk.{i}.{GGUF_NAME[name]}.weight"] if per_tensor is not None else qtype
            if method == "gptq":
                qs[name] = gptq_mod.gptq_into_gguf(W, h, t, damp=damp)
            else:
                qs[name] = ops.quantize(np.ascontiguousarray(W), t, (np.diag(h) / 2).astype(np.float32))
            setattr(out, name, qs[name].dequantize())
        return qs, out

    info = {"method": f"{method}-gguf", "gguf_type": qtype if per_tensor is None else "per-tensor", "damp": damp,
            "samples": int(tokens.shape[0]), "seq_len": int(tokens.shape[1])}
    return calibrate_sequential(model, source_file, tokens, block, progress, info)
