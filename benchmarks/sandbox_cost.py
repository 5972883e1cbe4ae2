"""What containing generated code costs per run: the same tiny program through `run_reaped`
with the sandbox off and on, alternated, N times each.

Reports wall time from the command's start and the per-run cost of bubblewrap (mean on - mean
off). The bound is not measured from this run: the issue's goal is "a few ms" per run, so the
report compares the cost with 10 ms.
    .venv/bin/python benchmarks/sandbox_cost.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

STARTED = time.perf_counter()
GOAL_MS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    from spechestra.processes import sandbox
    from spechestra.processes.reaped import run_reaped
    from spechestra.settings import temporary_settings
    if sandbox.unavailable():
        sys.exit(f"bubblewrap cannot run here: {sandbox.unavailable()}")
    times: dict[str, list[float]] = {"off": [], "auto": []}
    with tempfile.TemporaryDirectory() as cwd:
        for i in range(args.runs * 2 + 2):
            mode = ("off", "auto")[i % 2]
            with temporary_settings(sandbox=mode):
                t = time.perf_counter()
                run = run_reaped([sys.executable, "-c", "pass"], cwd, 30)
                if i >= 2:  # the first of each warms the caches
                    times[mode].append(time.perf_counter() - t)
            assert run.returncode == 0, run.output
    off, on = statistics.mean(times["off"]), statistics.mean(times["auto"])
    cost_ms = (on - off) * 1000
    print(f"one run of `python -c pass`: {off * 1000:.1f} ms uncontained, {on * 1000:.1f} ms in bubblewrap "
          f"({cost_ms:+.1f} ms per run; goal <= {GOAL_MS:g} ms)")
    print(json.dumps({"runs": args.runs, "off_ms": round(off * 1000, 1), "sandboxed_ms": round(on * 1000, 1),
                      "cost_ms": round(cost_ms, 1), "goal_ms": GOAL_MS,
                      "wall_seconds": round(time.perf_counter() - STARTED, 2)}))


if __name__ == "__main__":
    main()
