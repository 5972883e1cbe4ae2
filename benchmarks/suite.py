"""Benchmark: the test suite as a developer runs it (`make test`, or `make test-fast`). Not a test.

    python benchmarks/suite.py [--fast] [--runs 1] [--workers N]

For each run: the wall time from the command's start to its exit, against the goal (6 min for
`make test`, 2 min for `make test-fast`: fixed numbers, never this run's); and, where the machine
has /proc/stat, the CPU the whole machine spent meanwhile (busy and idle core-seconds). The suite
is CPU-bound when idle is a small part of cores x wall: then only less CPU makes it faster, and
runs of one tree differ by what else the machine does, and by how fast the machine is at the
time: on this shared virtual machine one tree took 644-647 busy core-s in two runs and 745-794 in
three others the same night, every part of it (servers, CLI, workers, test processes) 11-23 %
slower alike. Each run also times a small fixed loop of plain Python (`probe_cpu_s`: before, the
median and the slowest of one probe every 30 s meanwhile, after; this thread's own CPU time, so
the suite's load does not count; 0.12-0.15 s here). A slow core shows in it (0.21 s at the start
of one run); slower memory or caches, which a loop this small never leaves, do not: the 753
core-s run had a median of 0.137 s. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = {"test": 360.0, "test-fast": 120.0}


def _cpu() -> tuple[float, float] | None:
    """(busy, idle) core-seconds of the whole machine since boot; None without /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / tick, fields[3] / tick


def _probe(tries: int = 3) -> float:
    """CPU seconds of this thread for a fixed loop (the least of `tries`): the same on a machine of
    the same speed, whatever else runs."""
    best = float("inf")
    for _ in range(tries):
        started = time.thread_time()
        sum(i * i for i in range(3_000_000))
        best = min(best, time.thread_time() - started)
    return round(best, 3)


def _probing(every: float, found: list, over: threading.Event) -> None:
    while not over.wait(every):
        found.append(_probe(tries=1))


def _one(target: str, workers: int | None) -> dict:
    probe_before, during, over = _probe(), [], threading.Event()
    prober = threading.Thread(target=_probing, args=(30.0, during, over), daemon=True)
    prober.start()
    args = ["make", "--no-print-directory", target] + ([f"TEST_WORKERS={workers}"] if workers else [])
    before, started = _cpu(), time.perf_counter()
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    over.set()
    prober.join()
    after = _cpu()
    summary = next((line for line in reversed(done.stdout.splitlines())  # pytest's last line: "N passed, M failed in T"
                    if re.search(r"\d+ (passed|failed|error)", line) and " in " in line), "")
    run = {"wall_s": round(wall, 1), "exit": done.returncode,
           "passed": int(m.group(1)) if (m := re.search(r"(\d+) passed", summary)) else 0,
           "failed": int(m.group(1)) if (m := re.search(r"(\d+) failed", summary)) else 0}
    if before and after:
        run.update(busy_core_s=round(after[0] - before[0], 1), idle_core_s=round(after[1] - before[1], 1))
    during.sort()
    middle = [during[len(during) // 2], during[-1]] if during else []
    run.update(probe_cpu_s=[probe_before, *middle, _probe()])
    if done.returncode != 0:
        print(done.stdout[-3000:] + done.stderr[-2000:])
    return run


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="make test-fast instead of make test")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--workers", type=int, help="TEST_WORKERS (default: the Makefile's)")
    args = ap.parse_args(argv)
    target = "test-fast" if args.fast else "test"
    runs = []
    for i in range(args.runs):
        runs.append(_one(target, args.workers))
        print(f"run {i + 1}: {json.dumps(runs[-1])}", flush=True)
    walls = [r["wall_s"] for r in runs]
    figures = {"target": target, "cores": os.cpu_count(), "goal_s": GOAL_S[target], "runs": runs,
               "best_s": min(walls), "worst_s": max(walls), "within_goal": sum(w <= GOAL_S[target] for w in walls)}
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
