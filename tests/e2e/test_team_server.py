"""A team's server: Prefect on PostgreSQL. A database restart mid-build is a blip the build
rides out (Prefect's client retries the API's 500s and refused connections), not a failure."""

import os
import subprocess
import sys
import time

import pytest

from kit import build as kit_build
from kit.postgres import Postgres
from kit.server import PrefectServer
from spechestra.server.local import server_defaults

pytestmark = pytest.mark.timeout(420)
CALLS = 8  # write_wide_project: 4 specs x (code, tests)


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    """One PostgreSQL cluster and one server on it for the module (its migrations are ~8 s of CPU)."""
    db = Postgres().create()
    server = PrefectServer(tmp_path_factory.mktemp("team") / "home", PREFECT_API_DATABASE_CONNECTION_URL=db.url,
                           **server_defaults())
    try:
        server.start()
        yield server, db
    finally:
        server.stop()
        db.remove()


def _lines(path):
    return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_postgresql_restarted_mid_build(team_server, tmp_path):
    server, db = team_server
    project, times = tmp_path / "proj", tmp_path / "calls.txt"
    kit_build.write_wide_project(project)
    env = server.env(SPECHESTRA_PROVIDER="kit.build:timed_wide_provider", CALL_TIMES=str(times), CALL_SECONDS="0.5")
    build = subprocess.Popen([sys.executable, "-m", "spechestra", "build", "--project", str(project),
                              "--workers", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(_lines(times)) < 2 and time.monotonic() < deadline and build.poll() is None:
            time.sleep(0.1)
        assert len(_lines(times)) >= 2 and build.poll() is None, "the build ended before the fault"
        away = db.restart(pause=3.0)  # every connection cut; the API answers 500 while it is away
        output = build.communicate(timeout=300)[0]
        assert build.returncode == 0, f"database away {away:.2f}s\n" + output[-4000:]
        assert len(_lines(times)) == CALLS, output[-4000:]  # nothing paid twice, nothing left out
        assert "4 built" in output or "built" in output
    finally:
        if build.poll() is None:
            os.killpg(build.pid, 9)
            build.wait(timeout=20)


READ_RESULT = """
import sys
from prefect.client.orchestration import get_client
from prefect.client.schemas.sorting import FlowRunSort
with get_client(sync_client=True) as c:
    run = c.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
result = run.state.result(raise_on_failure=False)
print(type(result).__name__, getattr(result, "specs_compiled", None))
"""


def _build_on_machine(server, tmp_path, machine: str, **env):
    """A build by a CLI with a home of its own; then that machine's disk is gone (its home removed)."""
    import shutil
    project = tmp_path / f"proj-{machine}"
    kit_build.write_wide_project(project)
    built = server.run([sys.executable, "-m", "spechestra", "build", "--project", str(project)],
                       PREFECT_HOME=str(tmp_path / machine), SPECHESTRA_PROVIDER="kit.build:timed_wide_provider",
                       CALL_TIMES=str(tmp_path / f"t-{machine}"), CALL_SECONDS="0", **env)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    shutil.rmtree(tmp_path / machine)


def test_results_on_shared_storage_outlive_the_machine_that_wrote_them(team_server, tmp_path):
    """Before (each worker's own ~/.prefect/storage): "Path ... does not exist" for any other reader."""
    server, _ = team_server
    shared = tmp_path / "shared-results"
    _build_on_machine(server, tmp_path, "machine-a", PREFECT_LOCAL_STORAGE_PATH=str(shared))
    read = server.run([sys.executable, "-c", READ_RESULT], PREFECT_HOME=str(tmp_path / "machine-b"),
                      PREFECT_LOCAL_STORAGE_PATH=str(shared))
    assert read.returncode == 0 and read.stdout.split()[0] == "BuildResult", read.stdout + read.stderr[-3000:]
    assert "['p', 'q', 'r', 's']" in read.stdout
    _build_on_machine(server, tmp_path, "machine-c")  # Prefect's default: the machine's own disk
    lost = server.run([sys.executable, "-c", READ_RESULT], PREFECT_HOME=str(tmp_path / "machine-b"))
    assert lost.returncode != 0 and "does not exist" in lost.stderr, lost.stdout + lost.stderr[-2000:]


def test_a_server_with_basic_auth_refuses_strangers_and_serves_spechestra(tmp_path):
    import json
    import urllib.error
    import urllib.request
    server = PrefectServer(tmp_path / "home", auth="team:s3cret").start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(f"{server.url}/block_documents/filter", method="POST",
                                                          data=json.dumps({}).encode(),
                                                          headers={"Content-Type": "application/json"}), timeout=10)
        assert refused.value.code == 401  # no Secret block for whoever reaches the API
        project = tmp_path / "proj"
        kit_build.write_wide_project(project)
        built = server.run([sys.executable, "-m", "spechestra", "build", "--project", str(project)],
                           PREFECT_API_AUTH_STRING="team:s3cret", SPECHESTRA_PROVIDER="kit.build:timed_wide_provider",
                           CALL_TIMES=str(tmp_path / "t"), CALL_SECONDS="0")
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        assert len(_lines(tmp_path / "t")) == CALLS
    finally:
        server.stop()

