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


@pytest.fixture
def team_server(tmp_path):
    db = Postgres().create()
    server = PrefectServer(tmp_path / "home", PREFECT_API_DATABASE_CONNECTION_URL=db.url, **server_defaults())
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
