"""What `lowbit gptq` and `lowbit awq` run: load a model (GGUF, or an HF directory converted to a
temporary f32 GGUF), draw the calibration windows, quantize, write OUT (a directory) in the chosen
format. A failed run leaves nothing at OUT."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time

import numpy as np

from .. import ops
from ..model import llama
from .api import quantize_gguf_calibrated, quantize_gptq, quantize_rtn
from .awq import quantize_awq
from .data import calibration_windows
from .export import exact_gguf_type, write_gguf_dir, write_hf_dir
from .grid import GridSpec, check_group
from .sequential import Progress, quantize_without_data

log = logging.getLogger(__name__)
FORMATS = ("hf", "gguf")


@contextlib.contextmanager
def open_model(path: str | None, threads: int | None = None):
    """Yield (GGUFFile, LlamaModel, Tokenizer) for a GGUF file or an HF checkpoint directory."""
    from ..io.gguf import open_gguf
    from ..model.default import default_model_path
    from ..model.tokenizer import Tokenizer

    path = path or default_model_path()
    with contextlib.ExitStack() as stack:
        if os.path.isdir(path):
            from ..convert import convert_hf_to_gguf
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="lowbit-calib-"))
            gguf_path = os.path.join(tmp, "model-f32.gguf")
            convert_hf_to_gguf(path, gguf_path, outtype="f32")
        else:
            gguf_path = path
        f = stack.enter_context(open_gguf(gguf_path))
        model = llama.LlamaModel.from_gguf(f, threads=threads, repack=False)  # calibration reads GGUF bytes
        yield f, model, Tokenizer.from_gguf_metadata(f.metadata)


def _check_shapes(cfg: llama.Config, spec: GridSpec) -> None:
    for k in sorted({cfg.n_embd, cfg.n_ff, cfg.n_head * cfg.head_dim}):
        check_group(spec, k)


def _write(res, out_dir: str, fmt: str) -> list[str]:
    if fmt == "gguf":
        return [os.path.basename(write_gguf_dir(res, out_dir))]
    return write_hf_dir(res, out_dir)


def _summary(res, out_dir, fmt, files, t0) -> dict:
    info = {k: v for k, v in res.info.items() if k != "search"}
    return {**info, "output": os.path.abspath(out_dir), "format": fmt, "files": files,
            "seconds": time.perf_counter() - t0}


def _check_out(out_dir: str, fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"[calibrate] format must be one of {FORMATS}, got {fmt!r}")
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise FileExistsError(f"[calibrate] {out_dir} exists and is not an empty directory")


def gptq_to_dir(model_path: str | None, out_dir: str, *, bits: int = 4, group_size: int = 128, sym: bool = True,
                act_order: bool = False, static_groups: bool = True, damp: float = 0.01, rtn: bool = False,
                fmt: str = "hf", gguf_type: str | None = None, samples: int = 128, seq_len: int = 512,
                text: str | None = None, seed: int = 0, threads: int | None = None,
                progress: Progress | None = None) -> dict:
    """`lowbit gptq`: GPTQ (or --rtn) into OUT. With fmt "gguf": the grid's exact GGUF type (sym g32 4-bit
    -> Q4_0, asym g32 4-bit -> Q4_1, sym g32 8-bit -> Q8_0), or with gguf_type any GGUF type, GPTQ's
    error compensation applied block by block (gptq_into_gguf)."""
    _check_out(out_dir, fmt)
    t0 = time.perf_counter()
    with open_model(model_path, threads) as (f, model, tok):
        if fmt == "gguf" and gguf_type:
            ops.type_info(gguf_type)
            if rtn:
                res = quantize_without_data(model, f, lambda n, w: ops.quantize(np.ascontiguousarray(w), gguf_type),
                                            progress, {"method": "rtn-gguf", "gguf_type": gguf_type})
            else:
                tokens = calibration_windows(tok, samples, seq_len, seed, text)
                res = quantize_gguf_calibrated(model, f, tokens, gguf_type, "gptq", damp, progress)
            return _summary(res, out_dir, fmt, _write(res, out_dir, fmt), t0)
        style = "min" if fmt == "gguf" and not sym and bits == 4 and group_size == 32 else "gptq"
        spec = GridSpec(bits, group_size, sym, style)
        if bits not in (2, 3, 4, 8):
            raise ValueError(f"[gptq] bits must be one of 2, 3, 4, 8, got {bits}")
        _check_shapes(model.cfg, spec)
        if fmt == "gguf":
            if exact_gguf_type(spec) is None:
                raise ValueError(f"[gptq] no GGUF type stores {bits}-bit {'sym' if sym else 'asym'} groups of "
                                 f"{group_size} exactly; pass --gguf-type TYPE (e.g. q4_k) for GPTQ into that type")
            if act_order and not static_groups:
                raise ValueError("[gptq] GGUF blocks need monotonic groups: act-order with static groups only")
        if rtn:
            res = quantize_rtn(model, f, spec, progress)
        else:
            tokens = calibration_windows(tok, samples, seq_len, seed, text)
            res = quantize_gptq(model, f, tokens, spec, act_order, static_groups, damp, progress)
        return _summary(res, out_dir, fmt, _write(res, out_dir, fmt), t0)


def awq_to_dir(model_path: str | None, out_dir: str, *, bits: int = 4, group_size: int = 128,
               zero_point: bool = True, fmt: str = "hf", gguf_type: str | None = None, samples: int = 128,
               seq_len: int = 512, text: str | None = None, seed: int = 0, search_samples: int | None = None,
               threads: int | None = None, progress: Progress | None = None) -> dict:
    """`lowbit awq`: AWQ into OUT (AutoAWQ GEMM layout, or GGUF: zero-point-free g32 -> Q4_0, zero-point
    g32 -> Q4_1 with a float16 offset, or the scaled and clipped weights into gguf_type)."""
    _check_out(out_dir, fmt)
    if bits != 4:
        raise ValueError(f"[awq] bits must be 4 (the AWQ GEMM layout), got {bits}")
    t0 = time.perf_counter()
    with open_model(model_path, threads) as (f, model, tok):
        min_grid = fmt == "gguf" and zero_point
        spec = GridSpec(bits, group_size, not zero_point, "min" if min_grid else "awq")
        _check_shapes(model.cfg, spec)
        if fmt == "gguf" and not gguf_type and exact_gguf_type(spec) is None:
            raise ValueError(f"[awq] no GGUF type stores groups of {group_size} exactly; use --group-size 32 "
                             f"or pass --gguf-type TYPE")
        if fmt == "hf" and model.cfg.n_embd % 8:
            raise ValueError("[awq] the AWQ GEMM layout needs output sizes that are multiples of 8")
        tokens = calibration_windows(tok, samples, seq_len, seed, text)
        res = quantize_awq(model, f, tokens, bits, group_size, zero_point, search_samples,
                           gguf_type if fmt == "gguf" else None, min_grid, progress)
        return _summary(res, out_dir, fmt, _write(res, out_dir, fmt), t0)
