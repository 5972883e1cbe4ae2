"""A lost machine: a worker and its flow-run process killed (kill -9) mid-build. The heartbeat
automation `spechestra deploy` sets up marks the run Crashed within its bound, without waiting
for another build; the second automation puts it back to AwaitingRetry with nobody's help, and the
next worker finishes it from the cache and the answers it paid for, never marking itself Crashed.
A run resumed MAX_RESUMES times that starts again fails at once, saying why."""

import os
import signal
import time
from pathlib import Path

import pytest

from kit import build as kit_build
from kit.runs import trigger
from kit.server import BIN, REPO, PrefectServer, stop_process
from spechestra.orchestration.history import read_flow_run
from spechestra.orchestration.zombies import HEARTBEAT_SECONDS, MAX_RESUMES, RESUME_MESSAGE

pytestmark = pytest.mark.timeout(600)
CALLS = 8  # write_wide_project: 4 specs x (code, tests)
#: The silence the automation is deployed with here: the shortest allowed (the default is 90 s).
SILENCE_SECONDS = 45
#: The bound, from known inputs: the silence the automation waits for, the heartbeat just missed,
#: and the server's proactive-trigger pass and event delivery (a few seconds each; 30 s allowed).
CRASHED_WITHIN = SILENCE_SECONDS + HEARTBEAT_SECONDS + 30


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _wait_for_states(run_id, since: float, within: float):
    """The run's Crashed state and the AwaitingRetry after it, as soon as both exist (None if not)."""
    from prefect.client.orchestration import get_client

    crashed = resumed = None
    with get_client(sync_client=True) as c:
        while time.monotonic() - since < within and resumed is None:
            states = c.read_flow_run_states(run_id)
            crashed = next((s for s in states if s.name == "Crashed"), None)
            if crashed is not None:
                resumed = next((s for s in states if s.name == "AwaitingRetry" and s.timestamp >= crashed.timestamp),
                               None)
            time.sleep(1)
    return crashed, resumed


def _one_worker_pass(server, log, env) -> None:
    """A worker that takes what is scheduled now (the resumed run), runs it, and exits."""
    worker = server.spawn([str(BIN / "prefect"), "worker", "start", "--pool", "spechestra", "--run-once"], log, **env)
    try:
        worker.wait(timeout=300)
    finally:
        stop_process(worker)


def _lines(path):
    return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_a_lost_worker_is_crashed_in_bounded_time_and_its_retry_resumes(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.states import AwaitingRetry

    server = PrefectServer(tmp_path / "home").start()
    worker = None
    try:
        deployed = server.run([str(BIN / "spechestra"), "deploy", "--dir", str(REPO)],
                              SPECHESTRA_CRASH_AFTER=str(SILENCE_SECONDS))
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        assert "automation 'spechestra: crash runs whose heartbeats stopped'" in " ".join(deployed.stdout.split())
        project, times = tmp_path / "proj", tmp_path / "calls.txt"
        kit_build.write_wide_project(project)
        # TMPDIR: what the killed worker's processes cannot remove (Prefect's workspace files) stays
        # in the test's folder, not in /tmp for good.
        (tmp_path / "tmp").mkdir()
        env = dict(SPECHESTRA_PROVIDER="kit.build:timed_wide_provider", CALL_TIMES=str(times), CALL_SECONDS="2",
                   SPECHESTRA_PROJECTS=str(tmp_path), TMPDIR=str(tmp_path / "tmp"))
        with server.client_settings():
            run_id = trigger("build/build", {"project_dir": str(project), "max_workers": 1})
        worker = server.spawn([str(BIN / "prefect"), "worker", "start", "--pool", "spechestra"],
                              tmp_path / "worker.log", **env)
        deadline = time.monotonic() + 180
        while len(_lines(times)) < 3 and time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.2)
        assert len(_lines(times)) >= 3, "the build never got going"
        # The machine dies in the middle of a call (the next one started as the third ended), not in
        # the instant between a provider's answer and its record on disk: an answer lost there was
        # never kept by anyone and is rightly paid again (CI once killed inside that window: 9 calls).
        time.sleep(float(env["CALL_SECONDS"]) / 2)
        for pid in [worker.pid] + _descendants(worker.pid):  # the machine is gone: every process at once
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        worker.wait(timeout=30)
        killed_at, killed_wall, paid_before = time.monotonic(), time.time(), len(_lines(times))

        with server.client_settings():
            crashed, resumed = _wait_for_states(run_id, killed_at, CRASHED_WITHIN + 60)
            assert crashed is not None, f"not Crashed {time.monotonic() - killed_at:.0f}s after the kill"
            took = crashed.timestamp.timestamp() - killed_wall
            assert took <= CRASHED_WITHIN and f"no heartbeat for {SILENCE_SECONDS}s" in (crashed.message or ""), \
                (took, crashed.message)
            assert resumed is not None and resumed.message == RESUME_MESSAGE, "the crashed run was not resumed"
            print(f"crashed {took:.1f}s after the kill (bound {CRASHED_WITHIN}s), "
                  f"resumed {(resumed.timestamp - crashed.timestamp).total_seconds():.1f}s later")
        env["CALL_SECONDS"] = "0"  # the rest of the build: nothing left to kill, answers at once
        _one_worker_pass(server, tmp_path / "retry.log", env)
        with server.client_settings():
            run = read_flow_run(run_id)
            assert run.state.is_completed(), (tmp_path / "retry.log").read_text()[-4000:]
            with get_client(sync_client=True) as c:
                names = [s.name for s in c.read_flow_run_states(run_id)]
        after_retry = names[names.index("AwaitingRetry"):]
        assert "Crashed" not in after_retry, names  # the retry never marked itself Crashed
        assert len(_lines(times)) == CALLS, f"paid {paid_before} before the kill, {len(_lines(times))} in all"

        # A run that keeps crashing: resumed MAX_RESUMES times already, it starts again and gives up.
        with server.client_settings(), get_client(sync_client=True) as c:
            for _ in range(MAX_RESUMES):
                c.set_flow_run_state(run_id, AwaitingRetry(message=RESUME_MESSAGE), force=True)
        _one_worker_pass(server, tmp_path / "again.log", env)
        with server.client_settings():
            run = read_flow_run(run_id)
        assert run.state.is_failed() and "not resumed again" in (run.state.message or ""), run.state
        assert len(_lines(times)) == CALLS  # it gave up before building anything
    finally:
        if worker is not None:
            stop_process(worker)
        server.stop()
