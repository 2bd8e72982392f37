"""The README's calibrated-quantization table on SmolLM2: reference, RTN, GPTQ, AWQ, Q4_K_M, Q4_K_M with
an imatrix, and GPTQ into the Q4_K_M types, each with perplexity, file size and bits per weight.

    LOWBIT_NUM_THREADS=1 PYTHONPATH=python python3 tools/calib_table.py --work /tmp/calib-table > table.log

Every perplexity is measured the same way: WikiText-2 test excerpt (default_text_path), ctx 512, the first
--chunks chunks, on the model's weights dequantized to float32 (lowbit.calib.sequential.fake_quant_model),
so the numbers differ only by the weights. The reference is the shipped Q4_1 model dequantized to F32 and
written as an F32 GGUF; every method starts from that file.

- RTN / GPTQ (act-order) / AWQ: w4, asymmetric, groups of --group-size (64: SmolLM2's 576-wide rows take no
  group of 128), written as HF checkpoints (`--format hf`); size = the safetensors files (f16 embeddings,
  norms, scales), perplexity on the result's dequantized weights (embeddings f32 as in the reference).
- Q4_K_M (+ imatrix): `lowbit quantize` of the F32 GGUF (llama-quantize's bytes); the imatrix from
  `lowbit imatrix` on the C4 excerpt, samples x seq_len tokens in chunks of 512.
- GPTQ -> GGUF: GPTQ's error compensation into the type the Q4_K_M file gives each block linear (llama.cpp's
  mix falls back from q4_k to q5_0 etc. on SmolLM2's 576-wide rows, so a single `--gguf-type q4_k` cannot
  hold them), the other tensors copied from the Q4_K_M file: the same types and size as Q4_K_M.
Bits per weight: 8 x file bytes / the number of weights in the F32 GGUF (all tensors, norms included), and
8 x the bytes of the block linears (with their scales, zeros, g_idx) / their weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

import numpy as np
from lowbit.calib.api import quantize_gguf_calibrated, quantize_gptq, quantize_rtn
from lowbit.calib.awq import quantize_awq
from lowbit.calib.block import GGUF_NAME, LINEARS
from lowbit.calib.data import calibration_windows
from lowbit.calib.export import write_gguf_dir, write_hf_dir
from lowbit.calib.grid import GridSpec
from lowbit.calib.sequential import fake_quant_model
from lowbit.imatrix import compute_imatrix, save_imatrix
from lowbit.io.gguf import open_gguf
from lowbit.mixes import quantize_model
from lowbit.model.default import (
    default_calibration_path,
    default_model_path,
    default_text_path,
    read_calibration_documents,
)
from lowbit.model.llama import LlamaModel
from lowbit.model.runtime import perplexity
from lowbit.model.tokenizer import Tokenizer

log = logging.getLogger("calib_table")
MiB = 1024 * 1024


def files_size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path)
                   if n.endswith((".safetensors", ".gguf")))
    return os.path.getsize(path)


BLOCK_LINEARS = ("attn_q.", "attn_k.", "attn_v.", "attn_output.", "ffn_gate.", "ffn_up.", "ffn_down.",
                 "q_proj.", "k_proj.", "v_proj.", "o_proj.", "gate_proj.", "up_proj.", "down_proj.")


def block_linear_bytes(path: str) -> int:
    """Bytes the block linears take in the file(s) (packed weights, scales, zeros, g_idx): read from the
    GGUF tensor table or the safetensors headers."""
    if os.path.isdir(path):
        total = 0
        for n in os.listdir(path):
            if n.endswith(".safetensors"):
                with open(os.path.join(path, n), "rb") as fh:
                    header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
                total += sum(e["data_offsets"][1] - e["data_offsets"][0] for k, e in header.items()
                             if k != "__metadata__" and any(x in k for x in BLOCK_LINEARS))
        return total
    with open_gguf(path) as f:
        return sum(f.tensor(k).nbytes for k in f.tensors if k.startswith("blk.") and any(x in k for x in BLOCK_LINEARS))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, help="directory for the files made (created; reused if present)")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--search-samples", type=int, default=None, help="AWQ: samples its searches score (default all)")
    ap.add_argument("--group-size", type=int, default=64)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--only", default=None, help="comma-separated subset of rows: ref,rtn,gptq,awq,q4km,q4km-imatrix,gptq-gguf")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    os.makedirs(args.work, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    want = lambda row: only is None or row in only

    f32_path = os.path.join(args.work, "smollm2-f32.gguf")
    if not os.path.exists(f32_path):
        quantize_model(default_model_path(), f32_path, "F32")
    src = open_gguf(f32_path)
    model, tok = LlamaModel.from_gguf(src), Tokenizer.from_gguf_metadata(src.metadata)
    n_weights = sum(int(np.prod(t.shape)) for t in src.tensors.values())
    n_linear = sum(int(np.prod(t.shape)) for k, t in src.tensors.items()
                   if k.startswith("blk.") and any(x in k for x in BLOCK_LINEARS))
    with open(default_text_path(), encoding="utf-8") as fh:
        eval_ids = tok.encode(fh.read(), add_bos=None, parse_special=False)
    tokens = calibration_windows(tok, args.samples, args.seq_len)
    spec = GridSpec(4, args.group_size, sym=False)
    rows = []

    def ppl(m: LlamaModel) -> float:
        return perplexity(m, eval_ids, n_ctx=args.ctx, n_chunks=args.chunks).ppl

    def gguf_ppl(path: str) -> float:
        with open_gguf(path) as f:
            return ppl(fake_quant_model(LlamaModel.from_gguf(f), None))

    def add(name, p, path, t0, note=""):
        size = files_size(path)
        rows.append({"name": name, "ppl": p, "bytes": size, "mib": size / MiB, "bpw": 8 * size / n_weights,
                     "linear_bpw": 8 * block_linear_bytes(path) / n_linear,
                     "seconds": time.perf_counter() - t0, "note": note})
        log.info("%s", json.dumps(rows[-1]))
        print(json.dumps(rows[-1]), flush=True)

    def hf_row(name, make, note=""):
        out = os.path.join(args.work, name)
        t0 = time.perf_counter()
        res = make()
        if not os.path.isdir(out) or not os.listdir(out):
            write_hf_dir(res, out)
        add(name, ppl(res.to_llama_model()), out, t0, note)

    if want("ref"):
        t0 = time.perf_counter()
        add("reference (F32)", ppl(fake_quant_model(model, None)), f32_path, t0)
    if want("rtn"):
        hf_row("rtn", lambda: quantize_rtn(model, src, spec), f"w4 asym g{args.group_size}")
    if want("gptq"):
        hf_row("gptq", lambda: quantize_gptq(model, src, tokens, spec, act_order=True),
               f"w4 asym g{args.group_size} act-order")
    if want("awq"):
        hf_row("awq", lambda: quantize_awq(model, src, tokens, 4, args.group_size, zero_point=True,
                                           search_samples=args.search_samples),
               f"w4 zero-point g{args.group_size}, search on {args.search_samples or args.samples} samples")

    q4km = os.path.join(args.work, "smollm2-q4_k_m.gguf")
    if want("q4km") or want("gptq-gguf"):
        t0 = time.perf_counter()
        if not os.path.exists(q4km):
            quantize_model(f32_path, q4km, "Q4_K_M")
        if want("q4km"):
            add("Q4_K_M", gguf_ppl(q4km), q4km, t0, "lowbit quantize (llama-quantize's bytes)")
    if want("q4km-imatrix"):
        t0 = time.perf_counter()
        im_path = os.path.join(args.work, "imatrix.gguf")
        n_chunks = max(1, args.samples * args.seq_len // 512)
        if not os.path.exists(im_path):
            text = "\n\n".join(read_calibration_documents(default_calibration_path()))
            save_imatrix(im_path, compute_imatrix(f32_path, text, n_ctx=512, chunks=n_chunks))
        out = os.path.join(args.work, "smollm2-q4_k_m-imatrix.gguf")
        if not os.path.exists(out):
            quantize_model(f32_path, out, "Q4_K_M", imatrix=im_path)
        add("Q4_K_M + imatrix", gguf_ppl(out), out, t0, f"imatrix: C4, {n_chunks} chunks of 512")
    if want("gptq-gguf"):
        t0 = time.perf_counter()
        out_dir = os.path.join(args.work, "gptq-q4_k_m")
        with open_gguf(q4km) as mix:
            types = {f"blk.{i}.{GGUF_NAME[n]}.weight": mix.tensors[f"blk.{i}.{GGUF_NAME[n]}.weight"].qtype
                     for i in range(model.cfg.n_layer) for n in LINEARS}
            if not os.path.isdir(out_dir) or not os.listdir(out_dir):
                res = quantize_gguf_calibrated(model, src, tokens, types, "gptq")
                res.source_file = mix  # embeddings, output, metadata as in the Q4_K_M file
                write_gguf_dir(res, out_dir)
        path = os.path.join(out_dir, "model.gguf")
        kinds = sorted(set(types.values()))
        add("GPTQ -> GGUF (Q4_K_M types)", gguf_ppl(path), path, t0, "block linears: " + "/".join(kinds))

    ref = next((r["ppl"] for r in rows if r["name"].startswith("reference")), None)
    rtn_ppl = next((r["ppl"] for r in rows if r["name"] == "rtn"), None)
    print(f"\nSmolLM2-135M-Instruct, WikiText-2 excerpt, ctx {args.ctx}, {args.chunks} chunks; calibration: "
          f"{args.samples} x {args.seq_len} C4 tokens (seed 0)\n")
    print("| model | ppl | increase | / RTN's | MiB | bits/weight (file) | bits/weight (block linears) |\n"
          "|---|---|---|---|---|---|---|")
    for r in rows:
        inc = r["ppl"] - ref if ref is not None else float("nan")
        rel = inc / (rtn_ppl - ref) if ref is not None and rtn_ppl is not None else float("nan")
        print(f"| {r['name']} | {r['ppl']:.3f} | {inc:+.3f} | {rel:.2f} | {r['mib']:.1f} | {r['bpw']:.2f} "
              f"| {r['linear_bpw']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
