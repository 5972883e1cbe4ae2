"""One run of generated code, contained (`processes.reaped.run_reaped` + `processes.sandbox`):
its limits, what it can read, and its environment. Real bubblewrap, real processes."""

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from spechestra.processes import sandbox
from spechestra.processes.reaped import run_reaped
from spechestra.settings import temporary_settings

needs_bwrap = pytest.mark.skipif(sandbox.unavailable() is not None,
                                 reason=f"bubblewrap cannot run here: {sandbox.unavailable()}")


def _write_probe(mine, elsewhere) -> str:
    """Code that writes `mine/ok` and tries `elsewhere`, printing "refused ..." when it cannot."""
    mine.mkdir()
    elsewhere.parent.mkdir(exist_ok=True)
    return (f"open({str(mine / 'ok')!r}, 'w').write('1')\n"
            f"try:\n    open({str(elsewhere)!r}, 'w').write('x')\nexcept OSError as e:\n    print('refused', e)\n")


def _python(code: str, cwd, timeout: float = 60, **kw):
    return run_reaped([sys.executable, "-c", code], str(cwd), timeout, **kw)


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_memory_past_the_limit_is_refused(tmp_path, mode):
    with temporary_settings(sandbox=mode, sandbox_memory_mb=200):
        run = _python("x = bytearray(800 * 2**20)", tmp_path)
    assert run.returncode != 0 and "MemoryError" in run.output, run.output


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_a_fork_bomb_is_stopped_at_the_process_limit(tmp_path, mode):
    bomb = ("import os, time\nfor _ in range(200):\n    if os.fork() == 0:\n        time.sleep(60)\n"
            "        os._exit(0)\ntime.sleep(60)\n")
    with temporary_settings(sandbox=mode, sandbox_processes=20):
        run = _python(bomb, tmp_path, timeout=50)
    assert not run.timed_out and run.limit == "more than 20 processes at once", (run.limit, run.output[-500:])


def test_a_fork_loop_that_ends_between_two_looks_still_reaches_the_limit(tmp_path):
    """Before: the process count was looked at every `poll` seconds while the command ran, so a
    fork loop that returned in between passed (a perform step "succeeded" and its 500 processes
    were killed afterwards: test-fast on a loaded machine). What it leaves running counts too.
    The watch here never looks during the run (poll 600 s): only the count at its end can tell."""
    from spechestra.processes import reaper
    loop = "import os, time\nfor _ in range(25):\n    if os.fork() == 0:\n        time.sleep(60)\n        os._exit(0)\n"
    done = subprocess.run([sys.executable, reaper.__file__, "--limits=procs=20,poll=600", sys.executable, "-c", loop],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert f"{reaper.LIMIT_MARKER} more than 20 processes at once" in done.stdout, done.stdout[-500:]
    assert "25 process(es) left running" in done.stdout


def test_output_past_the_limit_is_stopped_and_said(tmp_path):
    with temporary_settings(sandbox_output_mb=1):
        run = _python("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 100_000)\n", tmp_path)
    assert run.returncode != 0 and run.limit.startswith("more than 1 MiB of output"), (run.returncode, run.limit)
    assert len(run.output) <= 2**20 + 1000


@needs_bwrap
def test_home_prefect_home_and_env_files_are_hidden(tmp_path, monkeypatch):
    home, prefect_home, project = tmp_path / "home", tmp_path / "prefect", tmp_path / "proj"
    for folder in (home, prefect_home, project):
        folder.mkdir()
    (home / "id_rsa").write_text("private")
    (prefect_home / "profiles.toml").write_text("PREFECT_API_KEY = 'pnu_secret'")
    (project / ".env").write_text("OPENAI_API_KEY=sk-in-dotenv")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PREFECT_HOME", str(prefect_home))
    probe = ("import os\nfor p in {paths!r}:\n    try:\n        print(p, repr(open(p).read()))\n"
             "    except OSError as e:\n        print(p, type(e).__name__)\n")
    paths = [str(home / "id_rsa"), str(prefect_home / "profiles.toml"), str(project / ".env")]
    run = _python(probe.format(paths=paths), project)
    assert run.contained == "bubblewrap, no network"
    assert "private" not in run.output and "pnu_secret" not in run.output and "sk-in-dotenv" not in run.output
    assert f"{home / 'id_rsa'} FileNotFoundError" in run.output, run.output


@needs_bwrap
def test_only_the_writable_folders_can_be_written(tmp_path):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    run = _python(_write_probe(mine, theirs / "no"), tmp_path, writable=[str(mine)])
    assert (mine / "ok").exists() and not (theirs / "no").exists()
    assert sandbox.refusals(run.output) == [f"the sandbox refused a write outside the build: {theirs / 'no'}"]


def test_the_environment_is_an_allow_list_in_every_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    monkeypatch.setenv("DATABASE_URL", "postgres://declared")
    monkeypatch.setenv("SOMETHING_ELSE", "not declared")
    for mode in ("auto", "off"):
        with temporary_settings(sandbox=mode):
            run = _python("import os, json\nprint(json.dumps(sorted(os.environ)))", tmp_path,
                          declared_env=["DATABASE_URL", "ANTHROPIC_API_KEY", "PREFECT_API_URL"])
        names = set(eval(run.output.strip().splitlines()[-1]))
        assert "DATABASE_URL" in names and "PATH" in names, (mode, names)
        assert not names & {"ANTHROPIC_API_KEY", "PREFECT_API_URL", "SOMETHING_ELSE"}, (mode, names)


@needs_bwrap
def test_the_home_folder_stays_hidden_inside_a_folder_the_run_reads(tmp_path, monkeypatch):
    """A script run from /tmp puts its folder on sys.path, which the sandbox binds read-only; with
    PREFECT_HOME (or HOME) below it, bwrap failed ("Can't remount readonly") and every spec's
    tests failed."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "id_rsa").write_text("private")
    monkeypatch.setenv("HOME", str(home))
    probe = f"import os\nprint('SEEN', os.listdir({str(home)!r}))\n"
    run = _python(probe, tmp_path, readable=[str(tmp_path)])
    assert run.returncode == 0 and "SEEN []" in run.output, run.output


@needs_bwrap
@pytest.mark.skipif(not os.access("/dev/shm", os.W_OK), reason="no writable /dev/shm here")
def test_a_project_under_dev_shm_stays_readable(tmp_path):
    """The sandbox gives its run a fresh /dev; a project there (TMPDIR=/dev/shm, a RAM disk for
    speed) vanished inside it, and every spec failed with "No module named ..." for its own
    dependency."""
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="spechestra-test-") as shm:
        src = os.path.join(shm, "src")
        os.mkdir(src)
        with open(os.path.join(src, "dep.py"), "w") as handle:
            handle.write("VALUE = 42\n")
        run = _python("import dep\nprint('VALUE', dep.VALUE)", shm, import_paths=[src])
    assert run.returncode == 0 and "VALUE 42" in run.output, run.output


def _running(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_a_killed_caller_leaves_no_test_running_past_its_timeout(tmp_path, mode):
    """Before: after kill -9 of the CLI, the tests (and their reaper) lived on past their
    timeout when bubblewrap was not there to end them with it."""
    suffix = uuid.uuid4().hex[:8]
    marker = f"spechestra-orphan-{suffix}"  # only the test process's own command line holds it whole
    caller = (f"import sys\nsys.path[:0] = {sys.path!r}\n"
              "from spechestra.processes.reaped import run_reaped\n"
              f"marker = 'spechestra-orphan-' + {suffix!r}\n"
              f"run_reaped([sys.executable, '-c', 'import time; time.sleep(300)', marker], {str(tmp_path)!r}, 4)\n")
    proc = subprocess.Popen([sys.executable, "-c", caller], env={**os.environ, "SPECHESTRA_SANDBOX": mode})
    try:
        deadline = time.monotonic() + 60
        while not _running(marker):
            assert proc.poll() is None and time.monotonic() < deadline, "the test process never started"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 4 + 3 + 10  # the run's timeout, the reaper's grace, slack
        while _running(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _running(marker) == [], "the killed caller's test process outlived its timeout"
    finally:
        for pid in _running(marker):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not __import__("spechestra.processes.landlock", fromlist=["abi"]).abi(),
                    reason="this kernel has no Landlock")
def test_without_bubblewrap_writes_are_still_limited_to_the_runs_own_folders(tmp_path, monkeypatch):
    """Before: where bubblewrap could not run (mode auto), generated tests could write anywhere the
    user can: build/conftest.py, a dependency's module, which later specs then imported. Landlock
    now limits the writes; SPECHESTRA_SANDBOX=off still means nothing is limited."""
    monkeypatch.setattr(sandbox, "unavailable", lambda: "simulated: bubblewrap is not installed")
    mine, build = tmp_path / "stage", tmp_path / "build"
    code = _write_probe(mine, build / "conftest.py")
    run = _python(code, tmp_path, writable=[str(mine)])
    assert (mine / "ok").exists() and not (build / "conftest.py").exists(), run.output
    assert "refused" in run.output and "Landlock" in run.contained, (run.output, run.contained)
    with temporary_settings(sandbox="off"):
        _python(code, tmp_path, writable=[str(mine)])
    assert (build / "conftest.py").exists()  # off: the user's explicit choice
