"""PREFECT_API_URL set the way Prefect documents it, in a profile (`prefect config set`), is the
server every command uses: before, the CLI read only the environment, started a private local
server, sent the runs there, and `server status` said "not running" (exit 1)."""

import re
import subprocess

import pytest

from kit import build as kit_build
from kit.cli import run
from kit.server import BIN

pytestmark = pytest.mark.timeout(600)


def test_a_profile_api_url_is_the_server_build_and_status_use(tmp_path, prefect_server):
    """The team's server is the test run's own (a real server the commands would not find
    without the profile: their PREFECT_HOME is new and their environment names no server)."""
    team_server = prefect_server
    home = tmp_path / "client-home"  # a user's PREFECT_HOME: the URL is only in its profile
    home.mkdir()
    configured = subprocess.run([str(BIN / "prefect"), "config", "set", f"PREFECT_API_URL={team_server.url}"],
                                env={**team_server.env(), "PREFECT_HOME": str(home), "PREFECT_API_URL": ""},
                                capture_output=True, text=True, timeout=120)
    assert configured.returncode == 0, configured.stderr
    assert team_server.url in (home / "profiles.toml").read_text()

    status = run(["server", "status"], tmp_path, own_home=home, timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"answering: {team_server.url}" in status.stdout and "Prefect profile" in status.stdout

    project = tmp_path / "proj"
    kit_build.write_chain_project(project)
    done = run(["build", "--project", str(project), "--workers", "1"], tmp_path, own_home=home, timeout=400,
               SPECHESTRA_PROVIDER="kit.build:slow_chain_provider", CALL_LOG=tmp_path / "log", CALL_SECONDS="0")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "starting local Prefect server" not in done.stderr and "4 compiled" in done.stdout
    assert team_server.ui in done.stdout  # the run link points at the profile's server
    assert not (home / "spechestra-server.json").exists()  # no managed server was started

    from spechestra.orchestration.history import read_flow_run
    run_id = re.search(r"Flow run ([0-9a-f-]{36}): ", done.stdout).group(1)
    with team_server.client_settings():
        assert read_flow_run(run_id).state.is_completed()  # the run is on that server (a private one's is not)
