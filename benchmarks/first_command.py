"""Benchmark: the first command on a fresh PREFECT_HOME, which starts the managed server and so
creates its database. Not a test.

    python benchmarks/first_command.py [--runs 3]

Makes the demo project once (its own home, not timed), then for each run times, from the
command's start to its exit, `spechestra build` of that project on a new, empty PREFECT_HOME
(every spec is served from the project's cache: no LLM call, so what is left is the server's
start, its database and the build's own overhead). `--no-template` hides the migrated-database
template (XDG_CACHE_HOME pointed at an empty folder), as before it existed. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXE = Path(sys.executable).parent / "spechestra"


def _run(args: list[str], home: Path, cwd: Path, **env) -> float:
    full = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **env}
    full.pop("PREFECT_API_URL", None)
    started = time.perf_counter()
    done = subprocess.run([str(EXE), *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return took


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-template", action="store_true")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="spechestra-first-"))
    homes = []
    try:
        homes.append(work / "demo-home")
        _run(["demo", "--dir", str(work / "demo")], homes[-1], work)
        from spechestra.demo import RECORDINGS  # the demo's recorded answers: the rebuild needs none of them
        env = {"SPECHESTRA_PROVIDER": f"replay:{RECORDINGS}"}
        if args.no_template:
            env["XDG_CACHE_HOME"] = str(work / "empty-cache")
        seconds = []
        for i in range(args.runs):
            homes.append(work / f"fresh-{i}")
            seconds.append(round(_run(["build", "--project", str(work / "demo")], homes[-1], work, **env), 2))
    finally:
        for home in homes:
            subprocess.run([str(EXE), "server", "stop"], env={**os.environ, "PREFECT_HOME": str(home)},
                           capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    figures = {"runs": args.runs, "template": not args.no_template, "first_command_s": seconds,
               "best_s": min(seconds), "worst_s": max(seconds)}
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
