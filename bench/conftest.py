"""Benchmarks print a ratio to a baseline timed in the same run, never an absolute bar.

Every benchmark records rows into RESULTS; the session ends with one table (and bench/last_run.json)
so the README's table is a copy of what one run printed.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

RESULTS: list[dict] = []


def best_time(fn, rounds: int = 5, min_time: float = 0.0) -> float:
    """The fastest of `rounds` calls (noise on a shared machine only ever adds time)."""
    fn()  # warm-up: page faults, lazy init, caches
    best = float("inf")
    t_start = time.perf_counter()
    n = 0
    while n < rounds or time.perf_counter() - t_start < min_time:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        n += 1
    return best


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("lowbit vs baselines (same run)")
    keys = []
    for r in RESULTS:  # the union of the columns, in first-seen order
        keys += [k for k in r if k not in keys]
    tr.write_line(" | ".join(f"{k:>12}" for k in keys))
    for r in RESULTS:
        cells = []
        for k in keys:
            v = r.get(k, "")
            cells.append(f"{v:12.2f}" if isinstance(v, float) else f"{str(v):>12}")
        tr.write_line(" | ".join(cells))
    with open(os.path.join(os.path.dirname(__file__), "last_run.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)
