"""The `lowbit` command line.

    lowbit demo [--rows R] [--k K] [--threads T] [--json]   quantize a matrix to every type: size, error, speed
    lowbit types [--json]                                   the quantization type table
    lowbit info [--json]                                    which ISA each kernel uses
"""

from __future__ import annotations

import argparse
import json
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lowbit", description="GGUF-exact quantization on small hardware")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="quantize a matrix to every type and print size / error / speed")
    d.add_argument("--rows", type=int, default=1024)
    d.add_argument("--k", type=int, default=4096)
    d.add_argument("--threads", type=int, default=None)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    t = sub.add_parser("types", help="the quantization type table")
    t.add_argument("--json", action="store_true")
    i = sub.add_parser("info", help="ISA per kernel, threads")
    i.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

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
