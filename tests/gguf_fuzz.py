"""Seeded mutation fuzzing of lowbit.io.open_gguf, meant to run in a subprocess under a memory cap.

    python gguf_fuzz.py BASE HEAD_LEN ITERATIONS SEED WORKDIR MEM_MB SECONDS  -> one JSON line of stats

Each iteration mutates the first HEAD_LEN bytes of BASE (the header; bit flips, byte and u32/u64
overwrites aimed mostly at length, count, type and offset fields, inserted and deleted bytes) or
truncates the file, writes the result followed by zeros up to BASE's length (a sparse file, so a
100 MB model costs nothing to rewrite), and opens it. An iteration passes when open_gguf raises
GGUFError, or succeeds and every tensor's data then reads (GGUFError for types lowbit lacks). Any
other exception is a failure; a crash kills the process, and WORKDIR/input.gguf is the input.
The address space is capped at its size after imports + MEM_MB + BASE's size (the map), so an
allocation a hostile count asked for shows up as a MemoryError failure. The run stops early after
SECONDS so a slow or loaded machine keeps CI time bounded; the stats say how many iterations ran.
"""

from __future__ import annotations

import json
import os
import random
try:
    import resource
except ImportError:  # Windows: no address-space cap
    resource = None
import shutil
import struct
import sys
import time
import traceback

import gguf

from lowbit import GGUFError
from lowbit.io import open_gguf

INTERESTING_U32 = [0, 1, 2, 3, 4, 5, 8, 9, 12, 13, 16, 31, 33, 255, 2**16, 2**31 - 1, 2**31, 2**32 - 1]
INTERESTING_U64 = [0, 1, 2, 8, 32, 33, 255, 2**31, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 1]

CATEGORIES = [  # GGUFError message keyword -> category, first match wins
    ("truncated", "truncated"), ("magic", "bad magic"), ("version", "version"), ("claims", "count/length"),
    ("UTF-8", "utf-8"), ("unknown value type", "value type"), ("unknown element type", "value type"),
    ("unknown GGML type", "tensor type"), ("nests arrays", "array depth"), ("dims", "dims"), ("dim ", "dims"),
    ("block size", "block size"), ("overflows", "overflow"), ("more than the whole file", "size > file"),
    ("not a multiple of the alignment", "offset alignment"), ("beyond the end", "data outside file"),
    ("overlap", "overlap"), ("duplicate key", "duplicate key"), ("duplicate tensor", "duplicate name"),
    ("general.alignment", "alignment"), ("bool", "bool"), ("not supported by lowbit", "unsupported type"),
    ("max_header_bytes", "header cap"), ("empty", "empty file"),
]


def structural_spans(path: str, head_len: int) -> list[list[tuple[int, int]]]:
    """Per header entry (kv or tensor info), the (start, length) of its fields, found by gguf-py.

    Only the first 16 parts and the last of each entry are kept, so a 50k-token array counts as one
    entry, not 100k targets, and mutations spread over the whole structure.
    """
    r = gguf.GGUFReader(path)
    entries = [f for f in r.fields.values()] + [t.field for t in r.tensors]
    out = []
    for field in entries:
        spans, pos = [], field.offset
        for part in field.parts:
            spans.append((pos, part.nbytes))
            pos += part.nbytes
        spans = [s for s in spans[:16] + spans[-1:] if s[1] and s[0] + s[1] <= head_len]
        if spans:
            out.append(spans)
    return out


def mutate(rng: random.Random, head: bytearray, spans, data_len: int) -> tuple[bytearray, int]:
    """A truncation, or one to four mutations of the header; returns (header, file length)."""
    if rng.random() < 0.15:  # mostly inside the header
        inside = rng.random() < 0.8 or not data_len
        cut = rng.randrange(len(head)) if inside else len(head) + rng.randrange(data_len)
        return head[:cut], cut
    for _ in range(rng.randint(1, 4)):
        if spans and rng.random() < 0.6:
            start, n = rng.choice(rng.choice(spans))
            pos = start + rng.randrange(n) if rng.random() < 0.3 else start
        else:
            pos = rng.randrange(len(head))
        pos = min(pos, len(head) - 1)  # earlier deletions may have shortened the header
        op = rng.randrange(7)
        if op == 0:
            head[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            head[pos] = rng.choice([0x00, 0xFF, rng.randrange(256)])
        elif op == 2:
            head[pos:pos + 4] = struct.pack("<I", rng.choice(INTERESTING_U32 + [rng.getrandbits(32)]))
        elif op == 3:
            v = rng.choice(INTERESTING_U64 + [len(head) + data_len, len(head), rng.getrandbits(64)])
            head[pos:pos + 8] = struct.pack("<Q", v)
        elif op == 4:
            del head[pos:pos + rng.randint(1, 16)]
        elif op == 5:
            head[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        else:  # a u64 length/count off by a little
            if pos + 8 <= len(head):
                v = struct.unpack_from("<Q", head, pos)[0]
                head[pos:pos + 8] = struct.pack("<Q", (v + rng.choice([-2, -1, 1, 2, 64])) % 2**64)
    return head, len(head) + data_len


def read_everything(f) -> int:
    touched = 0
    for name, info in f.tensors.items():
        if not info.supported:
            try:
                f.tensor(name)
            except GGUFError:
                continue
            raise AssertionError(f"tensor {name!r} of unsupported type {info.qtype} did not raise GGUFError")
        qt = f.tensor(name)
        touched += int(qt.data[0]) + int(qt.data[-1])  # first and last byte: inside the map
        if qt.nbytes <= 1 << 16:
            qt.dequantize()
    return touched


def category(msg: str) -> str:
    for word, cat in CATEGORIES:
        if word in msg:
            return cat
    return "other"


def proc_status(field: str) -> int | None:
    """A byte count from /proc/self/status (VmSize, VmRSS, VmHWM); None where there is none."""
    try:
        with open("/proc/self/status") as st:
            return next(int(line.split()[1]) * 1024 for line in st if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return None


def cap_address_space(extra_bytes: int) -> int | None:
    vm = proc_status("VmSize")
    if vm is None or resource is None:
        return None  # not Linux: no cap, the stats say so
    limit = vm + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    return limit


def run(base: str, head_len: int, iterations: int, seed: int, workdir: str, mem_mb: int, seconds: float) -> dict:
    with open(base, "rb") as fh:
        head0 = bytearray(fh.read(head_len))
    full_len = os.path.getsize(base)
    data_len = full_len - head_len
    spans = structural_spans(base, head_len)
    rss0, hwm0 = proc_status("VmRSS"), proc_status("VmHWM")  # after imports and gguf-py's pass
    limit = cap_address_space(mem_mb * 2**20 + full_len)
    rng = random.Random(seed)
    work = os.path.join(workdir, "input.gguf")
    stats = {"iterations": 0, "opened": 0, "gguf_error": 0, "failures": [], "categories": {},
             "address_space_limit_mb": None if limit is None else limit // 2**20}
    t0 = time.perf_counter()
    for it in range(iterations):
        if time.perf_counter() - t0 > seconds:
            break
        head, file_len = mutate(rng, bytearray(head0), spans, data_len)
        with open(work, "wb") as fh:
            fh.write(head)
            fh.truncate(file_len)  # zeros after the header, without writing them
        try:
            with open_gguf(work) as f:
                read_everything(f)
            stats["opened"] += 1
        except GGUFError as e:
            stats["gguf_error"] += 1
            cat = category(str(e))
            stats["categories"][cat] = stats["categories"].get(cat, 0) + 1
            if cat == "other":
                stats.setdefault("uncategorized", []).append(str(e)[-300:])
        except Exception as e:  # noqa: BLE001 - anything but GGUFError is the bug being hunted
            stats["failures"].append({"iteration": it, "error": repr(e), "traceback": traceback.format_exc()})
            shutil.copyfile(work, os.path.join(workdir, f"failure-{it}.gguf"))
        stats["iterations"] += 1
    stats["seconds"] = round(time.perf_counter() - t0, 2)
    peak = proc_status("VmHWM")
    if peak is not None:
        stats["rss_mb_before"], stats["peak_rss_mb_before"], stats["peak_rss_mb"] = (
            rss0 // 2**20, hwm0 // 2**20, peak // 2**20)
    return stats


if __name__ == "__main__":
    base_, head_len_, iterations_, seed_, workdir_, mem_mb_, seconds_ = sys.argv[1:8]
    print(json.dumps(run(base_, int(head_len_), int(iterations_), int(seed_), workdir_, int(mem_mb_),
                         float(seconds_))))
