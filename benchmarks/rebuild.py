"""Benchmark: second and later commands on a large project, as a user runs them.

Not a test. Every figure is wall time from the command's start to its exit (`spechestra build`
run as a subprocess), with a running managed server and with Prefect's temporary per-command
server (`SPECHESTRA_SERVER=temporary`). On a seeded project of `--specs` specs:

- a full build first (reported, not a goal);
- no-op rebuilds (nothing changed): goal under 5 s;
- one-leaf edits (a spec nothing depends on): goal under 5 s plus that spec's own work, which is
  computed from known inputs, never from the run: the provider's two seeded call delays for the
  spec plus the cost of running its generated tests, measured on its own before the builds;
- a no-op rebuild of the demo project: goal within 2 s of `python -c "import prefect"`.

    python benchmarks/rebuild.py --specs 200

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_provider import delay, test_cost  # noqa: E402
from build_dag import make_dag, write_project  # noqa: E402

BIN = Path(sys.executable).parent


def timed(args: list[str], env: dict, expect: str = "") -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    if done.returncode != 0 or expect not in done.stdout:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}), wanted {expect!r}:\n"
                         f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall, done.stdout


def import_prefect(repeats: int = 3) -> float:
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import prefect"], check=True)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def edit(spec: Path, version: int) -> None:
    text = spec.read_text()
    head, _, _ = text.partition("\n- FR-02:")
    spec.write_text(head.rstrip("\n") + f"\n- FR-02: Edit number {version} changes nothing observable.\n")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.1, help="median seconds per LLM call")
    ap.add_argument("--sigma", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="spechestra-bench-rebuild-"))
    dag = make_dag(args.specs, args.seed)
    leaves = [n for n in dag if not any(n in deps for deps in dag.values())]
    leaf = leaves[len(leaves) // 2]
    leaf_calls_s = sum(delay(leaf, kind, args.latency, args.sigma, args.seed) for kind in ("code", "tests"))
    leaf_tests_s = test_cost(leaf)
    leaf_work_s = leaf_calls_s + leaf_tests_s
    project = work / "project"
    write_project(project, dag)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SPECHESTRA_"))}
    base.update(PREFECT_HOME=str(work / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                PYTHONPATH=str(HERE), SPECHESTRA_PROVIDER="bench_provider:from_env", BENCH_LATENCY=str(args.latency),
                BENCH_SIGMA=str(args.sigma), BENCH_SEED=str(args.seed), COLUMNS="200")
    build = [str(BIN / "spechestra"), "build", "--project", str(project), "--workers", str(args.workers)]
    n = args.specs
    figures: dict = {"specs": n, "workers": args.workers, "latency": args.latency, "seed": args.seed,
                     "leaf": leaf, "leaf_calls_s": round(leaf_calls_s, 3), "leaf_tests_s": round(leaf_tests_s, 3),
                     "noop_goal_s": 5.0, "leaf_goal_s": round(5.0 + leaf_work_s, 2)}
    version = 0
    try:
        server = dict(base)
        wall, _ = timed([str(BIN / "spechestra"), "server", "start"], server)
        figures["server_start_s"] = round(wall, 2)
        wall, _ = timed(build, server, f"{n} compiled, 0 cached")
        figures["full_build_s"] = round(wall, 2)
        for mode, env in (("server", server), ("temporary", dict(base, SPECHESTRA_SERVER="temporary"))):
            noops = [timed(build, env, f"0 compiled, {n} cached")[0] for _ in range(args.repeats)]
            edits = []
            for _ in range(args.repeats):
                version += 1
                edit(project / "src" / f"{leaf}.spec.md", version)
                edits.append(timed(build, env, f"1 compiled, {n - 1} cached")[0])
            figures[f"noop_{mode}_s"] = [round(w, 2) for w in noops]
            figures[f"leaf_{mode}_s"] = [round(w, 2) for w in edits]
        figures["import_prefect_s"] = round(import_prefect(), 2)
        demo = work / "demo"
        demo_env = {k: v for k, v in server.items() if k != "SPECHESTRA_PROVIDER"}
        _, said = timed([str(BIN / "spechestra"), "demo", "--dir", str(demo)], demo_env)
        demo_env["SPECHESTRA_PROVIDER"] = said.split("Provider: ", 1)[1].split()[0]  # the demo's recorded answers
        walls = [timed([str(BIN / "spechestra"), "build", "--project", str(demo)], demo_env, "0 compiled")[0]
                 for _ in range(args.repeats)]
        figures["demo_noop_server_s"] = [round(w, 2) for w in walls]
        figures["demo_goal_s"] = round(figures["import_prefect_s"] + 2.0, 2)
    except BaseException:
        print(json.dumps(figures))  # what was measured before the failure
        raise
    finally:
        subprocess.run([str(BIN / "spechestra"), "server", "stop"], env=base, capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    figures["met"] = {
        "noop": max(figures["noop_server_s"] + figures["noop_temporary_s"]) < figures["noop_goal_s"],
        "leaf": max(figures["leaf_server_s"] + figures["leaf_temporary_s"]) < figures["leaf_goal_s"],
        "demo": max(figures["demo_noop_server_s"]) < figures["demo_goal_s"],
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
