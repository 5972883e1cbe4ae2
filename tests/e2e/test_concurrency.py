"""Issue 9, with real processes: two composes into one project, two builds of one project, and
a compose killed mid-write. Each failed on the code before the fix (see the docstrings)."""

import re
import subprocess
import sys
import time

import pytest

from kit import build as kit_build
from kit.cli import EXE, cli_env, main_in_process, prefect_console_restored, run  # noqa: F401 (a fixture)

pytestmark = pytest.mark.timeout(300)


def _spawn(args, cwd, stdout=subprocess.PIPE, **env):
    if not EXE.exists():
        pytest.skip("spechestra console script not installed in this interpreter (run `make test`)")
    return subprocess.Popen([str(EXE), *args], cwd=cwd, env=cli_env(None, **env), stdout=stdout,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _holds_the_lock(first, log) -> None:
    """Wait until the first build holds the project's lock: it does once it has made a call."""
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_text().strip()):
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)


def test_two_composes_never_overwrite_each_other(tmp_path):
    """Before: both processes reported "created" for one spec and one silently replaced the other
    (`exists()` then `os.replace`). Both write every spec at the same instant here."""
    (tmp_path / "src").mkdir()
    sync = tmp_path / "sync"  # both drafts are answered once both processes have asked
    sync.mkdir()
    procs = [_spawn(["compose", "CSV statistics", "--project", str(tmp_path), "--yes"], tmp_path,
                    SPECHESTRA_PROVIDER="kit.build:synced_composer_provider", SYNC_DIR=sync) for _ in range(2)]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    written = []
    for proc, out in zip(procs, outs):
        assert proc.returncode in (0, 1), out[-3000:]
        written.append({m.group(1) for m in re.finditer(r"│ (\S+)\s+│.*│ written\s+│", out)})
    specs = {p.relative_to(tmp_path / "src").as_posix()[: -len(".spec.md")]: p.read_text()
             for p in (tmp_path / "src").rglob("*.spec.md")}
    assert len(specs) == 4 and list((tmp_path / "src").rglob("*.tmp")) == []
    assert written[0] | written[1] == set(specs) and not written[0] & written[1]  # each spec created once
    for name, text in specs.items():  # ...by the process that says it created it
        writer = int(re.search(r"<!-- writer (\d+) -->", text).group(1))
        assert name in written[[p.pid for p in procs].index(writer)] or writer not in [p.pid for p in procs]


def test_two_composes_of_one_project_pay_for_each_spec_once(tmp_path):
    """Before: both composes paid for every component (no compose lock; 10 of 24 calls wasted).
    The second now waits for the first's writing, then skips the specs it finds."""
    (tmp_path / "src").mkdir()
    times, sync = tmp_path / "calls.txt", tmp_path / "sync"
    sync.mkdir()
    procs = [_spawn(["compose", "CSV statistics", "--project", str(tmp_path), "--yes"], tmp_path,
                    SPECHESTRA_PROVIDER="kit.build:timed_composer_provider", SYNC_DIR=sync,
                    CALL_TIMES=times, CALL_SECONDS="0.2") for _ in range(2)]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode in (0, 1) for p in procs), "\n".join(o[-2000:] for o in outs)
    calls = [line for line in times.read_text().splitlines() if line.strip()]
    assert len(list((tmp_path / "src").rglob("*.spec.md"))) == 4
    assert len(calls) == 2 + 4, outs  # one draft each, then each of the 4 specs once


def test_a_compose_cleans_what_a_killed_compose_left(tmp_path):
    """Before: a killed compose left hidden `.*.tmp` files in src/ for good."""
    (tmp_path / "src").mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / "src" / f".parse_csv.spec.md.{dead.pid}.x1y2.tmp"
    leftover.write_text("half a spec")
    live = tmp_path / "src" / f".stats.spec.md.{1}.a1b2.tmp"  # pid 1 is alive: another run's file in progress
    live.write_text("being written")
    done = run(["compose", "CSV statistics", "--project", str(tmp_path), "--yes"], tmp_path,
               SPECHESTRA_PROVIDER="kit:four_component_factory")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not leftover.exists() and live.exists()


def test_a_second_build_of_a_project_waits_for_the_first(tmp_path):
    """Before: two builds of one project tested each other's files and left build/ and the cache
    from different runs. Now the second waits (and says so), then finds everything built.
    The first build's answers are held at a gate until the second says it waits (with timed calls
    alone, a loaded machine let the first finish before the second had started)."""
    project = tmp_path / "proj"
    kit_build.write_chain_project(project)
    log, gate, said = tmp_path / "calls.log", tmp_path / "gate", tmp_path / "second.out"
    env = dict(SPECHESTRA_PROVIDER="kit.build:slow_chain_provider", CALL_LOG=log, CALL_SECONDS="0.1")
    first = _spawn(["build", "--project", str(project), "--workers", "1"], tmp_path, **env, CALL_GATE=gate)
    _holds_the_lock(first, log)
    with open(said, "w") as out:
        second = _spawn(["build", "--project", str(project), "--workers", "1"], tmp_path, stdout=out, **env)
        deadline = time.monotonic() + 120
        while "waiting for the build started at" not in said.read_text():
            assert second.poll() is None and first.poll() is None and time.monotonic() < deadline, said.read_text()
            time.sleep(0.05)
        gate.touch()
        second.wait(timeout=240)
    out1 = first.communicate(timeout=240)[0]
    out2 = said.read_text()
    assert first.returncode == 0 and second.returncode == 0, out1[-2000:] + out2[-2000:]
    assert "0 compiled, 4 cached, 0 failed, 0 blocked" in out2  # it built on what the first finished
    assert sorted(log.read_text().split()) == sorted("aabbccdd")  # every answer paid for once


def test_a_build_refuses_at_once_with_no_wait(tmp_path):
    project = tmp_path / "proj"
    kit_build.write_chain_project(project)
    log, gate = tmp_path / "calls.log", tmp_path / "gate"
    env = dict(SPECHESTRA_PROVIDER="kit.build:slow_chain_provider", CALL_LOG=log, CALL_SECONDS="0.1")
    # The first build's answers wait at the gate, so it still holds the lock when the second asks.
    first = _spawn(["build", "--project", str(project), "--workers", "1"], tmp_path, **env, CALL_GATE=gate)
    try:
        _holds_the_lock(first, log)
        done = run(["build", "--project", str(project), "--lock-timeout", "0"], tmp_path, **env)
        assert first.poll() is None, "the first build ended before the second asked for the lock"
        assert done.returncode == 1 and "is in use by the build started at" in done.stderr
        assert "Traceback" not in done.stderr + done.stdout
    finally:
        gate.touch()
        first.communicate(timeout=240)
    assert first.returncode == 0


def test_a_ctrl_c_ends_a_build_that_waits_for_the_project(tmp_path):
    """Before: a Ctrl-C did not end the wait for the project's lock; the command gave up after
    15 s and left its flow run Running for good (its flow thread was still waiting). Now the wait
    ends, the run ends in a final state, and the command exits 130, the first build untouched."""
    import os
    import signal

    from spechestra.orchestration.history import read_flow_run
    project = tmp_path / "proj"
    kit_build.write_chain_project(project)
    log, gate, said = tmp_path / "calls.log", tmp_path / "gate", tmp_path / "second.out"
    env = dict(SPECHESTRA_PROVIDER="kit.build:slow_chain_provider", CALL_LOG=log, CALL_SECONDS="0.1")
    first = _spawn(["build", "--project", str(project), "--workers", "1"], tmp_path, **env, CALL_GATE=gate)
    try:
        _holds_the_lock(first, log)
        with open(said, "w") as out:
            second = _spawn(["build", "--project", str(project)], tmp_path, stdout=out, **env)
            deadline = time.monotonic() + 120
            while "waiting for the build started at" not in said.read_text():
                assert second.poll() is None and time.monotonic() < deadline, said.read_text()
                time.sleep(0.05)
            os.killpg(second.pid, signal.SIGINT)  # what Ctrl-C in its terminal sends
            second.wait(timeout=60)
        text = said.read_text()
        assert first.poll() is None, "the first build ended: the wait was not ended by the Ctrl-C"
        assert second.returncode == 130 and "stopped (Ctrl-C)" in text, text[-3000:]
        run_id = re.search(r"runs/flow-run/([0-9a-f-]{36})", text).group(1)
        assert read_flow_run(run_id).state.is_final(), read_flow_run(run_id).state  # never left Running
    finally:
        gate.touch()
        first.communicate(timeout=240)
    assert first.returncode == 0


@pytest.mark.usefixtures("prefect_console_restored")
def test_status_reports_drift_between_specs_and_code(tmp_path, capsys, monkeypatch):
    """New: `spechestra status` says, per spec, what drifted since it was built; exit 1 if any.
    The build is the console script; `status` (a read) is `main` in this process."""
    import json
    project = tmp_path / "proj"
    kit_build.write_chain_project(project)
    env = dict(SPECHESTRA_PROVIDER="kit.build:slow_chain_provider", CALL_LOG=tmp_path / "log", CALL_SECONDS="0")
    assert run(["build", "--project", str(project), "--specs", "b"], tmp_path, **env).returncode == 0
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    code, out, _ = main_in_process(capsys, ["status", "--project", str(project), "--json"])
    rows = {r["spec"]: r for r in json.loads(out)}
    assert code == 1  # c and d were never built
    assert [rows[n]["state"] for n in "abcd"] == ["built", "built", "never built", "never built"]
    assert rows["a"]["cached"] and not rows["a"]["drifted"] and rows["c"]["drifted"]
    (project / "build" / "a.py").write_text("# mine\n")
    (project / "build" / "test_b.py").unlink()
    spec = project / "src" / "b.spec.md"
    spec.write_text(spec.read_text() + "\nOne more sentence.\n")
    code, out, _ = main_in_process(capsys, ["status", "--project", str(project)])
    assert code == 1
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert "edited by hand: a.py" in lines["a"] and "missing: test_b.py" in lines["b"]
    assert "│ yes " in lines["b"]  # b's spec changed since it was built
    assert "4 of 4 spec(s) drifted" in " ".join(out.split())
