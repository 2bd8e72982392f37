"""The README's matmul tables from one benchmark run (bench/last_run.json, or the file given).

    python tools/matmul_tables.py [bench/last_run.json]

Prints markdown: per type and layout, m = 1 GB/s and the ratio to ggml (1 and 2 threads), the fraction
of the read bandwidth on the matrices that stream from DRAM, m = 512 GFLOP/s and ratio; m = 8 / 32
GFLOP/s beside ggml's; SmolLM2's shapes; the ratio to numpy; then the bars of issue 3 that a row misses. Every number is a copy of what that one run measured.
"""

import json
import sys

TYPES = ["q4_0", "q4_1", "q5_k", "q4_k", "q6_k", "q8_0", "iq4_xs", "f16"]
DRAM = "28672x4096"  # larger than the last-level cache: the read-bandwidth bar applies


def main() -> None:
    rows = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "bench/last_run.json"))
    idx = {(r["bench"], r["type"], r.get("layout", "gguf"), r["shape"], r["threads"]): r for r in rows}

    def cell(bench, t, lay, shape, th, key, fmt="{:.2f}"):
        r = idx.get((bench, t, lay, shape, th))
        return fmt.format(r[key]) if r and key in r else ""

    print("| type | layout | m=1 4096x4096 GB/s 1t / 2t | vs ggml 1t / 2t | m=1 14336x4096 2t vs ggml "
          "| m=1 28672x4096 GB/s 1t / 2t | of read BW 1t / 2t | vs ggml 2t | m=1 4096x14336 2t vs ggml "
          "| m=512 4096x4096 2t GFLOP/s | vs ggml |")
    print("|" + "---|" * 12)
    misses = []
    for t in TYPES:
        for lay in ("gguf", "rows8"):
            if ("matmul m=1", t, lay, "4096x4096", 1) not in idx:
                continue
            m1 = "matmul m=1"
            print("| " + " | ".join([
                t, lay,
                cell(m1, t, lay, "4096x4096", 1, "lowbit_GBps", "{:.0f}") + " / "
                + cell(m1, t, lay, "4096x4096", 2, "lowbit_GBps", "{:.0f}"),
                cell(m1, t, lay, "4096x4096", 1, "vs_ggml") + " / " + cell(m1, t, lay, "4096x4096", 2, "vs_ggml"),
                cell(m1, t, lay, "14336x4096", 2, "vs_ggml"),
                cell(m1, t, lay, DRAM, 1, "lowbit_GBps", "{:.0f}") + " / " + cell(m1, t, lay, DRAM, 2, "lowbit_GBps", "{:.0f}"),
                cell(m1, t, lay, DRAM, 1, "frac_of_read_bw") + " / " + cell(m1, t, lay, DRAM, 2, "frac_of_read_bw"),
                cell(m1, t, lay, DRAM, 2, "vs_ggml"),
                cell(m1, t, lay, "4096x14336", 2, "vs_ggml"),
                cell("matmul m=512", t, lay, "4096x4096", 2, "lowbit_GFLOPs", "{:.0f}"),
                cell("matmul m=512", t, lay, "4096x4096", 2, "vs_ggml"),
            ]) + " |")
    for (bench, t, lay, shape, th), r in sorted(idx.items()):
        if th == 2 and bench in ("matmul m=1", "matmul m=512") and r.get("vs_ggml", 9) < 1.0:
            misses.append(f"{bench} {t} {lay} {shape} 2t: {r['vs_ggml']:.2f}x ggml")
        if bench == "matmul m=1" and r.get("frac_of_read_bw", 9) < 0.85:
            misses.append(f"{bench} {t} {lay} {shape} {th}t: {r['frac_of_read_bw']:.2f} of the read "
                          f"({r['lowbit_GBps']:.1f} of {r['read_GBps']:.1f} GB/s)")
    print()
    print("| type | layout | m=8 4096x4096 | m=8 28672x4096 | m=32 4096x4096 | m=32 28672x4096 | m=32 4096x14336 |")
    print("|" + "---|" * 7)
    for t in TYPES:
        for lay in ("gguf", "rows8"):
            if ("matmul m=8", t, lay, "4096x4096", 2) not in idx:
                continue
            cells = [t, lay]
            for bench, shape in (("matmul m=8", "4096x4096"), ("matmul m=8", DRAM), ("matmul m=32", "4096x4096"),
                                 ("matmul m=32", DRAM), ("matmul m=32", "4096x14336")):
                cells.append(cell(bench, t, lay, shape, 2, "lowbit_GFLOPs", "{:.0f}") + " / "
                             + cell(bench, t, lay, shape, 2, "ggml_GFLOPs", "{:.0f}"))
            print("| " + " | ".join(cells) + " |")
    print()
    print("| type | layout | 576x576 m=1 1t / 2t | 1536x576 m=1 1t / 2t | 576x1536 m=1 1t / 2t "
          "| 1536x576 m=512 2t GFLOP/s (vs ggml) |")
    print("|" + "---|" * 6)
    for t in TYPES:
        for lay in ("gguf", "rows8"):
            if not any(("matmul m=1", t, lay, s, 1) in idx for s in ("576x576", "1536x576", "576x1536")):
                continue
            cells = [t, lay]
            for shape in ("576x576", "1536x576", "576x1536"):
                pair = cell("matmul m=1", t, lay, shape, 1, "vs_ggml") + " / " + cell("matmul m=1", t, lay, shape, 2, "vs_ggml")
                cells.append("" if pair == " / " else pair)
            big = cell("matmul m=512", t, lay, "1536x576", 2, "lowbit_GFLOPs", "{:.0f}")
            cells.append(big + " (" + cell("matmul m=512", t, lay, "1536x576", 2, "vs_ggml") + ")" if big else "")
            print("| " + " | ".join(cells) + " |")
    for bench in ("matmul m=1", "matmul m=512"):
        v = [r["vs_numpy_deq_matmul"] for r in rows if r["bench"] == bench and "vs_numpy_deq_matmul" in r]
        if v:
            print(f"\n{bench}: {min(v):.1f}-{max(v):.1f}x numpy's dequantize + matmul")
    print()
    print("below a bar:" if misses else "every bar held in this run")
    for m in misses:
        print("  " + m)


if __name__ == "__main__":
    main()
