"""The LLM concurrency limit survives a team server's faults without a person: the server killed
and restarted mid-build leaves no slot held, and no answer is bought twice."""

import os
import subprocess
import sys
import time

import pytest

from kit import build as kit_build
from kit.calls import calls as call_log
from kit.calls import peak_overlap
from kit.server import PrefectServer
from spechestra.server.local import server_defaults

pytestmark = pytest.mark.timeout(420)
CALLS = 8  # write_wide_project: 4 specs x (code, tests)


def _limit(server, name, limit=None):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    with server.client_settings(), get_client(sync_client=True) as c:
        if limit is not None:
            c.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        return c.read_global_concurrency_limit_by_name(name)


@pytest.fixture(scope="module")
def lease_server(tmp_path_factory):
    """One server for the module, with the settings Spechestra gives the servers it starts (and
    the README tells a team to give theirs): slot leases stored on disk. The first test kills and
    restarts it; it is up again when that test ends."""
    server = PrefectServer(tmp_path_factory.mktemp("leases") / "home", **server_defaults()).start()
    try:
        yield server
    finally:
        server.stop()


def test_server_killed_and_restarted_mid_build(lease_server, tmp_path):
    server, build = lease_server, None
    try:
        _limit(server, "spechestra-llm", limit=1)
        project, times = tmp_path / "proj", tmp_path / "calls.txt"
        kit_build.write_wide_project(project)
        # The build waits for the restart as a team's would (SPECHESTRA_SERVER_GRACE: a start took
        # >13 s on a loaded CI machine and the default 15 s ran out; stopping is test_resume's).
        env = server.env(SPECHESTRA_PROVIDER="kit.build:timed_wide_provider", CALL_TIMES=str(times),
                         CALL_SECONDS="1.5", SPECHESTRA_SERVER_GRACE="120")
        build = subprocess.Popen([sys.executable, "-m", "spechestra", "build", "--project", str(project),
                                  "--workers", "4"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, start_new_session=True)
        deadline = time.monotonic() + 120
        while not call_log(times) and time.monotonic() < deadline and build.poll() is None:
            time.sleep(0.1)
        assert call_log(times), "no LLM call finished before the fault"
        server.kill()  # a call holds the only slot now, or is about to take it
        time.sleep(2)
        server.start()
        output = build.communicate(timeout=360)[0]
        assert build.returncode == 0, output[-4000:]
        calls = call_log(times)
        assert len(calls) == CALLS, output[-4000:]          # nothing bought twice, nothing left out
        assert peak_overlap(calls) <= 1            # the limit held across the restart
        assert "provider call failed" not in output          # a gate fault is never a provider fault
        assert _limit(server, "spechestra-llm").active_slots == 0  # no slot left held
    finally:
        if build is not None and build.poll() is None:
            os.killpg(build.pid, 9)
            build.wait(timeout=20)
        server.restart_if_down()  # killed and not back: the next tests need it up


def test_a_slot_held_past_its_renewal_time_is_renewed_on_the_server(lease_server, monkeypatch):
    """One thread renews every lease the process holds (Prefect's keeper, a thread and a client per
    call, cost ~65 ms of every call). The lease file on disk must move forward while a slot is held."""
    import json

    from spechestra.orchestration import limits, slots
    monkeypatch.setattr(slots._Renewer, "RENEW_AFTER", 1.0)
    server = lease_server
    _limit(server, "renewed", limit=2)
    with server.client_settings(), limits.limit_slot("renewed")():
        files = list(server.home.rglob("concurrency_leases/*-*.json"))
        assert len(files) == 1, files
        first = json.loads(files[0].read_text())["expiration"]
        deadline = time.monotonic() + 30
        while json.loads(files[0].read_text())["expiration"] == first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert json.loads(files[0].read_text())["expiration"] > first, "the lease was not renewed"
        assert _limit(server, "renewed").active_slots == 1
    limits.settle()
    assert _limit(server, "renewed").active_slots == 0


def test_a_spec_keeps_its_slot_only_for_its_next_call(lease_server):
    """A spec asks for its tests right after its code: the slot stays with it for LINGER_SECONDS
    (one take instead of two), then goes back by itself; a spec's end gives it back at once."""
    from spechestra.orchestration import limits
    server = lease_server
    _limit(server, "kept", limit=1)
    with server.client_settings():
        gate = limits.limit_slot("kept")
        with gate():
            pass
        with gate():  # the next call within the linger: the same slot, no second take
            assert _limit(server, "kept").active_slots == 1
        deadline = time.monotonic() + 10
        while _limit(server, "kept").active_slots and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _limit(server, "kept").active_slots == 0, "a kept slot was never given back"
        other = limits.limit_slot("kept")
        with gate():
            pass
        limits.settle()
        assert _limit(server, "kept").active_slots == 0
        with other():  # the only slot is free for another spec at once
            pass
        limits.settle()
