"""Ctrl-C and SIGTERM during a build (issue 19): no LLM call starts after the signal, running
tests end, what was paid for is kept, and the command exits at once (130, 143), saying so. The next
build resumes from the kept answers. Real CLI subprocesses on the test run's Prefect server."""

import os
import re
import signal
import subprocess
import time

import pytest

from kit import build as kit_build
from kit.calls import calls as _calls
from kit.cli import EXE, cli_env
from spechestra.orchestration.history import read_flow_run

pytestmark = pytest.mark.timeout(300)
CALL_SECONDS = 1.0
#: After the signal: the calls in flight land (one call each), then the flow and the process end.
EXIT_WITHIN = CALL_SECONDS + 10


@pytest.mark.parametrize("sig, runner, group", [
    (signal.SIGINT, "threads", False), (signal.SIGTERM, "threads", False), (signal.SIGTERM, "dask", False),
    (signal.SIGINT, "dask", True)], ids=["ctrl-c", "sigterm", "sigterm-dask", "terminal-ctrl-c-dask"])
def test_a_signal_mid_build_stops_calls_at_once_and_the_next_build_resumes(tmp_path, sig, runner, group):
    """Before: the command went on until every running spec's fix loop ended (27 s with these
    answers and 5 fixes each), paying for calls started after the signal. On Dask the specs run
    in worker processes that never heard the signal: the build went on to the end, then the
    command said "no new LLM call was started" (they hear it now through the run's stop file).
    `group`: sent to the command's whole process group, as a terminal's Ctrl-C is; Dask's worker
    processes died of it, with tracebacks (they leave it to the command now)."""
    if runner == "dask":
        pytest.importorskip("prefect_dask", reason="prefect-dask not installed (pip install 'spechestra[dask]')")
    project, times = tmp_path / "proj", tmp_path / "calls.txt"
    kit_build.write_wide_project(project, names="pq")
    env = cli_env(SPECHESTRA_PROVIDER="kit.build:never_passing_wide_provider", WIDE_NAMES="pq",
                  CALL_TIMES=str(times), CALL_SECONDS=str(CALL_SECONDS), SPECHESTRA_TASK_RUNNER=runner)
    if not EXE.exists():
        pytest.skip("spechestra console script not installed in this interpreter (run `make test`)")
    proc = subprocess.Popen([str(EXE), "build", "--workers", "2", "--fixes", "5"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=group)
    try:
        deadline = time.monotonic() + 120
        while len(_calls(times)) < 6 and time.monotonic() < deadline:  # code, tests, a fix each: fixing again
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            time.sleep(0.1)
        assert len(_calls(times)) >= 6, "the build never got going"
        signalled, signalled_at = time.time(), time.monotonic()
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
        took = time.monotonic() - signalled_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    calls = _calls(times)
    late = [c.start for c in calls if c.start > signalled + 0.05]
    assert late == [], f"{len(late)} call(s) started after the signal, {[round(t - signalled, 3) for t in late]} s after it"
    print(f"exited {took:.1f}s after the signal (bound {EXIT_WITHIN}s), {len(calls)} calls paid before it")
    assert took <= EXIT_WITHIN, f"exited {took:.1f}s after the signal (bound {EXIT_WITHIN}s)"
    assert proc.returncode == 128 + sig, out[-3000:]  # 130 for Ctrl-C, 143 for SIGTERM
    said = " ".join(out.split())
    assert "stopped" in said and "paid for are kept" in said and "run the same command again" in said, out[-2000:]
    assert "Traceback" not in out, out[-3000:]
    # Before: a build whose specs were all stopped was a success, its run Completed.
    run_id = re.search(r"runs/flow-run/([0-9a-f-]{36})", out).group(1)
    assert read_flow_run(run_id).state.name == "Stopped", read_flow_run(run_id).state
    again = subprocess.run([str(EXE), "build", "--workers", "2", "--fixes", "5"], cwd=project,
                           env={**env, "CALL_SECONDS": "0"},  # nothing left to interrupt: answers at once
                           capture_output=True, text=True, timeout=240)
    assert again.returncode == 1, again.stdout[-2000:] + again.stderr[-2000:]  # its tests never pass
    # Each spec asks code, tests and 5 fixes once in all: what the stopped build paid is replayed.
    # Before: the next build asked each paid fix again (16 calls for 14): its prompt quoted a test
    # run that named the stopped build's staging folder and pytest's timing.
    paid = len(_calls(times))
    assert paid == 2 * (2 + 5), f"paid {len(calls)} before the stop, {paid} in all"
