"""A build whose task runner cannot start (SPECHESTRA_TASK_RUNNER names a cluster that does not
answer): one line naming the setting and what to check, and its flow run ends Failed saying so."""

from datetime import datetime, timezone

import pytest

from kit import build as kit_build
from kit.server import free_port
from spechestra import Conductor
from spechestra.errors import ConfigurationError

pytestmark = pytest.mark.timeout(300)


def _fails_saying(project, setting: str) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    kit_build.write_chain_project(project)
    started = datetime.now(timezone.utc)
    with pytest.raises(ConfigurationError) as error:
        Conductor(str(project), provider=kit_build.chain_provider()).build()
    said = str(error.value)
    assert said.startswith(f"SPECHESTRA_TASK_RUNNER={setting}: the task runner could not start (") and \
        "\n" not in said, said
    with get_client(sync_client=True) as client:
        runs = [run for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(
            start_time=FlowRunFilterStartTime(after_=started))) if run.parameters.get("project_dir") == str(project)]
    assert [run.state.type.value for run in runs] == ["FAILED"], [(r.name, r.state) for r in runs]
    assert said in runs[0].state.message, runs[0].state.message
    return said


def test_a_dask_scheduler_that_does_not_answer(tmp_path, monkeypatch):
    """Before: Dask's own "OSError: Timed out trying to connect" (Dask connects at the first submit)."""
    pytest.importorskip("prefect_dask", reason="prefect-dask not installed (pip install 'spechestra[dask]')")
    import dask
    setting = f"dask:tcp://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("SPECHESTRA_TASK_RUNNER", setting)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        said = _fails_saying(tmp_path, setting)
    assert "check the scheduler's address" in said


@pytest.mark.filterwarnings("ignore:Ray Client connection timed out:UserWarning")  # Ray's own, before ours
def test_a_ray_cluster_that_does_not_answer(tmp_path, monkeypatch, capfd):
    """Before: "error: ray client connection timeout", and the build's flow run stayed Running for
    good (Ray connects when Prefect enters the runner, outside the part of the run it looks after).
    Ray's client gives up after three tries (~30 s; 3 s here); a cluster that wants a token looks the same to it. Nor does
    the runner's end start a local Ray (Ray's own exit asked for its runtime context: 30 s more)."""
    pytest.importorskip("prefect_ray", reason="prefect-ray not installed (pip install 'spechestra[ray]')")
    import ray  # noqa: F401 (first: its client module imported on its own leaves `ray.util` half made)
    import ray.util.client.worker as ray_client
    # Ray's RAY_CLIENT_{INITIAL,MAX}_CONNECTION_TIMEOUT_S as Ray holds them once imported: 3 tries of 1 s
    monkeypatch.setattr(ray_client, "INITIAL_TIMEOUT_SEC", 1)
    monkeypatch.setattr(ray_client, "MAX_TIMEOUT_SEC", 1)
    setting = f"ray://127.0.0.1:{free_port()}"
    monkeypatch.setenv("SPECHESTRA_TASK_RUNNER", setting)
    said = _fails_saying(tmp_path, setting)
    assert "(ConnectionError: ray client connection timeout)" in said and "RAY_AUTH_MODE=token" in said, said
    printed = "".join(capfd.readouterr())
    assert "Ray Client is not connected" not in printed and "Token authentication is enabled" not in printed, printed
