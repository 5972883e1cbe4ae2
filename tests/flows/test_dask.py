"""The build flow on a local Dask cluster (2 worker processes): specs are pickled to workers."""

import contextlib
import shutil
import socket
import warnings
from pathlib import Path

import pytest

from spechestra import Conductor
from spechestra.orchestration.history import wait_for_task_runs

pytestmark = pytest.mark.timeout(300)
from kit import CORPUS


def test_corpus_math_builds_on_a_local_dask_cluster(tmp_path, monkeypatch):
    pytest.importorskip("prefect_dask", reason="prefect-dask not installed (pip install 'spechestra[dask]')")
    if not (CORPUS / "math").is_dir():
        pytest.skip(f"corpus not present at {CORPUS} (it exists in CI beside the repo)")
    project = tmp_path / "math"
    shutil.copytree(CORPUS / "math", project)
    # Worker processes choose the provider by setting and import the test kit from PYTHONPATH.
    monkeypatch.setenv("SPECHESTRA_TASK_RUNNER", "dask")
    monkeypatch.setenv("SPECHESTRA_PROVIDER", "kit.build:math_provider")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1]))
    with socket.socket() as taken, warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with contextlib.suppress(OSError):  # Dask's default port, as another build's cluster holds it
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        result = Conductor(str(project)).build(max_workers=2)
    assert not [w for w in warned if "8787" in str(w.message)], [str(w.message) for w in warned]
    assert result.success, result.errors
    assert sorted(result.specs_compiled) == ["factorial", "is_prime", "math_utils", "math_workflow"]
    assert (project / "build" / "src" / "math_workflow.py").exists()
    runs = {t.name: t for t in wait_for_task_runs(result.flow_run_id, expected=5)}
    assert runs["math_workflow"].start_time >= max(runs["factorial"].end_time, runs["is_prime"].end_time)



def test_a_local_cluster_has_a_process_per_core_and_threads_for_the_rest(tmp_path, monkeypatch):
    """Before: one worker process per spec slot, each ~2.8 s of CPU importing Prefect (8 slots on
    2 cores: 25 core-s, the first call 8 s in). Now at most a process per core; the build still
    runs up to its `max_workers` specs at once, never more."""
    pytest.importorskip("prefect_dask", reason="prefect-dask not installed (pip install 'spechestra[dask]')")
    from dask.system import CPU_COUNT

    from kit import build as kit_build
    from kit.calls import calls, peak_overlap
    project, times = tmp_path / "proj", tmp_path / "calls.txt"
    kit_build.write_wide_project(project, names="pqrs")
    for name, value in dict(SPECHESTRA_TASK_RUNNER="dask", SPECHESTRA_PROVIDER="kit.build:timed_wide_provider",
                            WIDE_NAMES="pqrs", CALL_TIMES=str(times), CALL_SECONDS="0.3",
                            PYTHONPATH=str(Path(__file__).parents[1])).items():
        monkeypatch.setenv(name, value)
    result = Conductor(str(project)).build(max_workers=4)
    assert result.success, result.errors
    log = calls(times)
    assert len(log) == 8 and len({c.pid for c in log}) <= min(4, CPU_COUNT), log
    assert peak_overlap(log) <= 4

