"""A build killed with SIGKILL resumes: finished specs are not recompiled, no partial files remain."""

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit import build as kit_build  # noqa: F401  (the provider the subprocess names)
from spechestra import Conductor
from spechestra.orchestration.history import read_flow_run

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[2]


def _calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_sigkill_mid_build_then_rebuild_resumes(tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_URL
    project, log = tmp_path / "proj", tmp_path / "calls.log"
    kit_build.write_chain_project(project)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(Path(__file__).parents[1])]),
               PREFECT_API_URL=PREFECT_API_URL.value(), SPECHESTRA_PROVIDER="kit.build:slow_chain_provider",
               CALL_LOG=str(log), CALL_SECONDS="0.5")
    proc = subprocess.Popen([sys.executable, "-m", "spechestra", "build", "--project", str(project), "--workers", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "c" not in _calls(log):  # c starts only once a and b have finished
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the build never reached spec c"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    before = _calls(log)
    assert before.count("a") == 2 and before.count("b") == 2 and "d" not in before

    build = project / "build"
    leftovers = [p.name for p in build.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    for py in build.rglob("*.py"):  # every file on disk is whole
        ast.parse(py.read_text())

    killed_run = json.loads((project / ".spechestra" / "build.lock").read_text())["flow_run_id"]
    assert read_flow_run(killed_run).state.is_running()  # what the history says of a killed run

    # Answers c's build had already paid for when it was killed are kept on disk, to be reused.
    kept = [json.loads(f.read_text()) for f in (project / ".spechestra" / "answers").glob("*.json")]
    already_paid = sum(len(answers) for answers in kept)
    assert already_paid <= 1 and len(kept) <= 1  # at most c's compile answer (c's tests never started)

    # The same provider (part of the cache key), here in this process; its calls go to a new log.
    after = tmp_path / "after.log"
    for name, value in (("SPECHESTRA_PROVIDER", "kit.build:slow_chain_provider"), ("CALL_LOG", str(after)),
                        ("CALL_SECONDS", "0")):
        monkeypatch.setenv(name, value)
    result = Conductor(str(project)).build(max_workers=1)
    assert result.success, result.errors
    assert sorted(result.specs_skipped) == ["a", "b"] and sorted(result.specs_compiled) == ["c", "d"]
    calls = _calls(after)  # compile + tests for c and d, less what c had already paid for
    assert calls.count("c") == 2 - already_paid and calls.count("d") == 2 and len(calls) == 4 - already_paid
    assert result.details["c"].reused == already_paid
    assert list((project / ".spechestra" / "answers").glob("*.json")) == []  # finished specs leave none
    assert read_flow_run(killed_run).state.name == "Crashed"  # marked by the build that followed it


@pytest.fixture(scope="module")
def dying_server(tmp_path_factory):
    """A server of the module's own, which its tests stop and start again (up when each ends)."""
    from kit.server import PrefectServer
    server = PrefectServer(tmp_path_factory.mktemp("dying") / "server").start()
    try:
        yield server
    finally:
        server.stop()


def test_a_build_whose_server_dies_stops_soon_and_resumes_when_it_is_back(dying_server, tmp_path):
    """Before: the build stalled 229-440 s and ended `error: [Errno 111] Connection refused`.
    Now it stops, saying why, soon after the server stops answering; finished specs are kept and
    the same command resumes from them once the server is back."""
    from kit.server import BIN
    server = dying_server
    project, log = tmp_path / "proj", tmp_path / "calls.log"
    kit_build.write_chain_project(project)
    env = dict(SPECHESTRA_PROVIDER="kit.build:slow_chain_provider", CALL_LOG=str(log), CALL_SECONDS="1",
               SPECHESTRA_SERVER_GRACE="5")
    args = [str(BIN / "spechestra"), "build", "--project", str(project), "--workers", "1"]
    try:
        proc = server.spawn(args, tmp_path / "first.log", **env)
        deadline = time.monotonic() + 120
        while "c" not in _calls(log):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.1)
        server.stop()
        proc.wait(timeout=120)  # a hang guard only: it stops ~10 s after the server (see the note)
        out = (tmp_path / "first.log").read_text()
        assert proc.returncode == 1 and "has not answered for 5s" in out and "resumes" in out
        kept = len(list((project / ".spechestra" / "cache").glob("*.json")))
        assert kept >= 2  # a and b at least (c may have finished too)

        server.start()  # the same database, on the same port
        again = server.run(args, **{**env, "CALL_SECONDS": "0"})  # nothing left to interrupt
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        assert f"{4 - kept} compiled, {kept} cached, 0 failed, 0 blocked" in again.stdout
    finally:
        server.restart_if_down()


def test_a_python_build_whose_server_dies_stops_soon_in_one_line(dying_server, tmp_path, monkeypatch):
    """Issue 19, before: `Conductor.build()` went on for 146 s after its server died and ended on a
    bare ConnectError (the CLI said it in one line after 15 s). Now the same watch ends the call
    with one ServerError line and no call starts after it; what was built is in the cache (the CLI
    test above shows the next build resuming from it)."""
    from spechestra.errors import ServerError
    server = dying_server
    project, log = tmp_path / "proj", tmp_path / "calls.log"
    kit_build.write_chain_project(project)
    for name, value in (("CALL_LOG", str(log)), ("CALL_SECONDS", "1"), ("SPECHESTRA_SERVER_GRACE", "5")):
        monkeypatch.setenv(name, value)
    grace, poll = 5.0, 2.0
    stopped: dict = {}

    def stop_the_server_at_c():
        deadline = time.monotonic() + 120
        while "c" not in _calls(log) and time.monotonic() < deadline:
            time.sleep(0.1)
        stopped["at"] = time.monotonic()  # it refuses connections from here on; its shutdown can take longer
        server.stop()
        stopped["took"] = time.monotonic() - stopped["at"]

    import threading
    killer = threading.Thread(target=stop_the_server_at_c, daemon=True)
    try:
        killer.start()
        with server.client_settings():  # its exit waits for this server's events once it is back
            with pytest.raises(ServerError) as error:
                Conductor(str(project), provider=kit_build.slow_chain_provider()).build(max_workers=1)
            raised, paid_at_the_error = time.monotonic(), len(_calls(log))
            killer.join(timeout=60)  # done with the server before this test starts it again
            assert "at" in stopped, f"stopped before its server was: {error.value}"
            took = raised - stopped["at"]
            print(f"ServerError {took:.1f}s after the server was told to stop (its shutdown took "
                  f"{stopped['took']:.1f}s; grace {grace:g}s)")
            said = str(error.value)
            assert "has not answered for 5s (connection refused)" in said and "resumes" in said and "\n" not in said
            # Bound from known inputs: the grace, a probe's poll on each side, one call in flight.
            assert took <= grace + 2 * poll + 1 + 5, f"raised {took:.1f}s after the server stopped"
            time.sleep(3)  # the flow's thread is stopped too: no call starts after the error (one may land)
            assert len(_calls(log)) <= paid_at_the_error + 1, "calls went on after the build said it stopped"
            assert len(list((project / ".spechestra" / "cache").glob("*.json"))) >= 2  # a and b kept
            # The server back: the stopped run's thread (in Prefect's retries) ends its run, and its
            # client's events reach the server instead of retrying into this test run's teardown.
            server.start()
            for flow_thread in [t for t in threading.enumerate() if t.name == "spechestra-watched-flow"]:
                flow_thread.join(timeout=120)
                assert not flow_thread.is_alive(), "the stopped build's thread never ended"
    finally:
        server.restart_if_down()
