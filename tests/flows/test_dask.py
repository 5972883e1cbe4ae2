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

