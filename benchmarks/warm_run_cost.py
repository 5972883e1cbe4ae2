"""What one spec's test run costs on the warm test runner: wall time and the machine's CPU per run
of a two-test file, N runs, after one that starts the runner (its sandbox and preload).

CPU is the whole machine's busy time (/proc/stat) over the runs, so run it on an otherwise idle
machine; the runner's processes live in a sandbox of their own, where no per-process count reaches.
No goal: it shows what a change to the runner saves (compare two trees, alternated).
    .venv/bin/python benchmarks/warm_run_cost.py [--runs N]
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

TESTS = "from m import f\n\n\ndef test_f():\n    assert f(2) == 2\n\n\ndef test_g():\n    assert f(3) == 3\n"


def _busy_ticks() -> int:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    from spechestra.processes import warm
    if not warm.usable(False):
        sys.exit("the warm runner cannot run here (it needs bubblewrap and Landlock: `spechestra doctor` says why)")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "build"
        stage = root / ".spechestra" / "staging" / "a-1-x"
        stage.mkdir(parents=True)
        (stage / "m.py").write_text("def f(v):\n    return v\n")
        (stage / "test_m.py").write_text(TESTS)
        argv = ["-q", "-p", "no:cacheprovider", "-p", "no:anyio", "--rootdir", str(root), "--confcutdir", str(root),
                "-o", "addopts=", str(stage / "test_m.py"), "--junitxml={run_tmp}/report.xml"]

        def once():
            run = warm.run_pytest(argv, str(root), 60, [str(stage), str(root)], writable=[str(stage)],
                                  writable_root=str(root / ".spechestra" / "staging"), report=str(Path(folder) / "r.xml"))
            if run is None or run.returncode != 0:
                sys.exit(f"the warm runner did not pass the tests: {run and run.output[-2000:]}")

        try:
            once()  # starts the runner
            ticks, started = _busy_ticks(), time.perf_counter()
            for _ in range(args.runs):
                once()
            wall, cpu = (time.perf_counter() - started) / args.runs, (_busy_ticks() - ticks) / os.sysconf("SC_CLK_TCK") / args.runs
        finally:
            warm.stop_all()
    print(f"one warm run of a two-test file: {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms of the machine's CPU")
    print(json.dumps({"runs": args.runs, "wall_ms": round(wall * 1000, 1), "cpu_ms": round(cpu * 1000, 1),
                      "wall_seconds": round(time.perf_counter() - STARTED, 2)}))


if __name__ == "__main__":
    main()
