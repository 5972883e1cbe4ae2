"""Benchmark: Spechestra's build against SpecSoloist's `compile_project` on one seeded DAG.

Not a test. Builds a synthetic project of `--specs` function specs (each depending on up to three
of the dozen specs before it), on a provider that answers instantly but sleeps per call for
`--latency` seconds times a seeded log-normal factor (per spec and prompt kind, like real LLM
calls of different sizes). Then, on a copy of the same project and the same provider, SpecSoloist's
nearest equivalent: `compile_project(parallel=True, max_workers=W)` and `run_tests` for every spec.

    python benchmarks/build_dag.py --specs 40 --latency 1.0 --workers 8

The last line printed is one JSON object (see `main`). `bound_s` is the best any schedule could
do with a new pytest per spec, computed before the build from known inputs only: each spec's work
is its two seeded call delays (the provider sleeps exactly those) plus the cost of running one
spec's generated tests in a new interpreter, measured on its own; the bound is max(critical path,
total work / workers). Everything the build adds (Prefect, scheduling, publishing) shows as
`overhead_ms_per_spec`. With the warm test runner a spec's tests cost less than a new pytest, so
`llm_only_bound_s` (the seeded delays alone, tests free) is the floor nothing can beat.
`command_wall_s` is the wall time from this command's start to the build's end (interpreter,
imports and the managed server's start included).
"""

from __future__ import annotations

import time

COMMAND_STARTED = time.perf_counter()  # wall time is reported from the command's start, too

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="spechestra-bench-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_provider import BenchProvider, test_cost  # noqa: E402


def make_dag(n: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    names = [f"s{i:02d}" for i in range(n)]
    dag = {}
    for i, name in enumerate(names):
        window = names[max(0, i - 12):i]
        dag[name] = sorted(rng.sample(window, k=min(len(window), rng.choice([0, 1, 1, 2, 2, 3]))))
    return dag


def spec_text(name: str, deps: list[str]) -> str:
    front = {"name": name, "type": "function", "status": "draft"}
    if deps:
        front["dependencies"] = deps
    return ("---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n"
            f"# Overview\nComponent {name} (marker-{name}).\n\n"
            "# Interface\n```yaml:schema\ninputs:\n  value:\n    type: integer\n"
            "outputs:\n  result:\n    type: integer\n```\n\n# Behavior\n- FR-01: Return value unchanged.\n")


def write_project(root: Path, dag: dict[str, list[str]]) -> None:
    (root / "src").mkdir(parents=True)
    for name, deps in dag.items():
        (root / "src" / f"{name}.spec.md").write_text(spec_text(name, deps))


def bound(dag: dict[str, list[str]], seconds: dict[str, float], workers: int) -> tuple[float, float, float]:
    finish: dict[str, float] = {}
    for name in dag:  # names are in topological order by construction
        finish[name] = seconds[name] + max((finish[d] for d in dag[name]), default=0.0)
    critical, work = max(finish.values()), sum(seconds.values())
    return max(critical, work / workers), critical, work


def run_spechestra(root: Path, provider, workers: int):
    from spechestra import Conductor
    from spechestra.orchestration.history import wait_for_task_runs
    conductor = Conductor(str(root), provider=provider)
    started = time.perf_counter()
    result = conductor.build(max_workers=workers)
    wall = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"Spechestra build failed: {result.errors}")
    wait_for_task_runs(result.flow_run_id, expected=len(result.build_order), timeout=60)
    return result, wall


def run_specsoloist(root: Path, provider, workers: int) -> tuple[float, int]:
    from specsoloist.config import SpecSoloistConfig
    from specsoloist.core import SpecSoloistCore

    class Config(SpecSoloistConfig):
        def create_provider(self):
            return provider

    config = Config.from_env(str(root))
    config.languages["python"].test_command = [sys.executable, "-m", "pytest", "-q", "{file}"]  # same interpreter
    core = SpecSoloistCore(str(root), config=config)
    started = time.perf_counter()
    compiled = core.compile_project(parallel=True, max_workers=workers, incremental=False)
    passed = sum(1 for name in compiled.specs_compiled if core.run_tests(name)["success"])
    return time.perf_counter() - started, passed


def set_llm_limit(slots: int) -> None:
    """The README's `spechestra-llm` limit, active, on this run's server (its own PREFECT_HOME)."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from spechestra.orchestration.prefect import client, local_api
    from spechestra.settings import settings
    with local_api(), client() as c:  # the managed server of this PREFECT_HOME, started if need be
        c.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=settings.llm_limit, limit=slots))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", type=int, default=40)
    ap.add_argument("--latency", type=float, default=1.0, help="median seconds per LLM call")
    ap.add_argument("--sigma", type=float, default=0.5, help="log-normal spread of call latency")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--skip-specsoloist", action="store_true")
    ap.add_argument("--llm-limit", type=int, default=0, help="slots of an active `spechestra-llm` global "
                    "concurrency limit during the build (0: none); with slots >= workers it is never contended")
    args = ap.parse_args(argv)

    dag = make_dag(args.specs, args.seed)
    work = Path(tempfile.mkdtemp(prefix="spechestra-bench-"))
    try:
        write_project(work / "ours", dag)
        shutil.copytree(work / "ours", work / "theirs")
        ours = BenchProvider(args.latency, args.sigma, args.seed)
        tests_s = test_cost(next(iter(dag)))
        seconds = {n: ours.delay(n, "code") + ours.delay(n, "tests") + tests_s for n in dag}
        bound_s, critical_s, work_s = bound(dag, seconds, args.workers)
        # The floor no schedule can beat whatever its tests cost: the LLM's seeded waits alone.
        llm_bound_s = bound(dag, {n: seconds[n] - tests_s for n in dag}, args.workers)[0]
        if args.llm_limit:
            set_llm_limit(args.llm_limit)
        result, wall = run_spechestra(work / "ours", ours, args.workers)
        figures = {
            "specs": args.specs, "workers": args.workers, "latency": args.latency, "seed": args.seed,
            "makespan_s": round(result.duration, 2), "wall_s": round(wall, 2),
            "bound_s": round(bound_s, 2), "critical_path_s": round(critical_s, 2), "work_s": round(work_s, 2),
            "command_wall_s": round(time.perf_counter() - COMMAND_STARTED, 2),
            "makespan_over_bound": round(result.duration / bound_s, 3),
            "llm_only_bound_s": round(llm_bound_s, 2), "makespan_over_llm_only_bound": round(result.duration / llm_bound_s, 3),
            "overhead_ms_per_spec": round(1000 * (result.duration - bound_s) / args.specs, 1),
            "tests_s_per_spec": round(tests_s, 3), "llm_calls": ours.calls, "llm_limit_slots": args.llm_limit,
        }
        if not args.skip_specsoloist:
            theirs = BenchProvider(args.latency, args.sigma, args.seed)
            soloist_s, passed = run_specsoloist(work / "theirs", theirs, args.workers)
            figures.update(specsoloist_s=round(soloist_s, 2), specsoloist_llm_calls=theirs.calls,
                           specsoloist_tests_passed=passed,
                           makespan_over_specsoloist=round(result.duration / soloist_s, 3))
    finally:
        from spechestra.server import local as local_server
        local_server.stop()  # the managed server this run's PREFECT_HOME started, if any
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
