"""The warm test runner (`processes.warm`): one sandbox per build folder, a forked, Landlock-bound
process per run. Every guarantee of a cold run must hold for each run on its own: it writes only
its own staging folder, cannot reach the server or another run, times out, has its leftovers
killed and its limits applied, and is judged by its own junit report. Real bubblewrap, Landlock
and pytest."""

import os
import sys
import time

import pytest

from spechestra.core.spec_build import junit_counts
from spechestra.processes import landlock, sandbox, warm
from spechestra.processes.reaped import run_reaped
from spechestra.settings import temporary_settings

pytestmark = pytest.mark.skipif(not warm.usable(False), reason=(
    f"the warm runner needs bubblewrap and Landlock: bubblewrap {sandbox.unavailable() or 'works'}, "
    f"Landlock ABI {landlock.abi()}"))


@pytest.fixture
def build(tmp_path):
    """A build folder with two specs' staging folders, and this test's servers ended after it."""
    root = tmp_path / "build"
    for stage in ("a-1-x", "b-1-y"):
        (root / ".spechestra" / "staging" / stage).mkdir(parents=True)
    yield root
    warm.stop_all()


def _stage(build, tests: str, name: str = "a-1-x"):
    stage = build / ".spechestra" / "staging" / name
    (stage / "m.py").write_text("def f(v):\n    return v\n")
    (stage / "test_m.py").write_text(tests)
    return stage


def _args(build, stage):
    return ["-q", "-p", "no:cacheprovider", "--rootdir", str(build), "--confcutdir", str(build), "-o", "addopts=",
            str(stage / "test_m.py")]


def _warm(build, stage, timeout=60.0):
    report = str(build.parent / "report.xml")
    if os.path.exists(report):
        os.remove(report)
    run = warm.run_pytest([*_args(build, stage), "--junitxml={run_tmp}/report.xml"], str(build), timeout,
                          [str(stage), str(build)], writable=[str(stage)],
                          writable_root=str(build / ".spechestra" / "staging"), report=report)
    assert run is not None, "the warm runner fell back to a cold run"
    return run, junit_counts(report)


def _server_pids():
    return {key: server.proc.pid for key, server in warm._SERVERS.items()}


def test_a_run_is_judged_as_a_cold_run_is(build):
    stage = _stage(build, "from m import f\n\ndef test_ok():\n    assert f(7) == 7\n\n"
                          "def test_bad():\n    assert f(7) == 8\n")
    run, counts = _warm(build, stage)
    (build.parent / "cold").mkdir()
    report = str(build.parent / "cold" / "report.xml")
    cold = run_reaped([sys.executable, "-m", "pytest", *_args(build, stage), f"--junitxml={report}"], str(build), 60,
                      import_paths=[str(stage), str(build)], writable=[str(stage), str(build.parent / "cold")],
                      readable=[str(build)])
    assert counts == junit_counts(report) == {"tests": 2, "failures": 1, "errors": 0, "skipped": 0}
    assert run.returncode == cold.returncode == 1
    assert "assert 7 == 8" in run.output and run.contained == "bubblewrap, no network"


def test_installed_plugins_come_imported_and_rewritten_as_pytest_imports_them(build):
    """Before: each run imported and rewrote them itself (~0.1 s of the ~0.2 s of CPU a run took).
    Now the server's own pytest session has: a run finds them imported by a pytest hook that is
    not its own, and pytest does not warn that they cannot be rewritten."""
    stage = _stage(build, (
        "import sys\n\n"
        "def test_plugin_imported_before_this_run(request):\n"
        "    loader = sys.modules['pytest_timeout'].__loader__\n"
        "    assert type(loader).__name__ == 'AssertionRewritingHook'\n"
        "    assert loader.config is not request.config\n"))
    run, counts = _warm(build, stage)
    assert counts == {"tests": 1, "failures": 0, "errors": 0, "skipped": 0}, run.output
    assert "cannot be rewritten" not in run.output and "warning" not in run.output.lower(), run.output


def test_a_run_starts_with_the_runners_own_objects_out_of_its_collections(build):
    """Before: every run's collections (pytest's own at its end) walked pytest and its plugins,
    imported by the server: ~25 ms of a run's ~90 ms of CPU. Now they start frozen; the run's own
    garbage is collected as anywhere (a cycle it drops is freed)."""
    stage = _stage(build, (
        "import gc\nimport weakref\n\n"
        "class Node:\n    pass\n\n"
        "def test_frozen_before_this_run():\n"
        "    assert gc.get_freeze_count() > 10_000\n\n"
        "def test_its_own_cycles_are_collected():\n"
        "    a, b = Node(), Node()\n    a.other, b.other = b, a\n    gone = weakref.ref(a)\n"
        "    del a, b\n    gc.collect()\n    assert gone() is None\n"))
    run, counts = _warm(build, stage)
    assert counts == {"tests": 2, "failures": 0, "errors": 0, "skipped": 0}, run.output


def test_a_run_writes_only_its_own_staging_folder(build):
    other = build / ".spechestra" / "staging" / "b-1-y"
    stage = _stage(build, (
        "import os\n\n"
        "def test_writes():\n"
        "    open(os.path.join(os.path.dirname(__file__), 'mine.txt'), 'w').write('ok')\n"
        "    wrote = []\n"
        f"    for path in ({str(other / 'b.py')!r}, {str(build / 'conftest.py')!r}, {str(build / 'm.py')!r}):\n"
        "        try:\n            open(path, 'w').write('x')\n        except OSError:\n            pass\n"
        "        else:\n            wrote.append(path)\n"
        "    assert wrote == []\n"))
    run, counts = _warm(build, stage)
    assert counts == {"tests": 1, "failures": 0, "errors": 0, "skipped": 0}, run.output
    assert (stage / "mine.txt").read_text() == "ok"
    assert not (other / "b.py").exists() and not (build / "conftest.py").exists()


def test_a_run_cannot_stop_the_server_or_another_run(build):
    _warm(build, _stage(build, "def test_ok():\n    pass\n"))
    before = _server_pids()
    stage = _stage(build, "import os, signal\n\ndef test_kill():\n"
                          "    for pid in range(1, 64):\n        if pid != os.getpid():\n"
                          "            try:\n                os.kill(pid, signal.SIGKILL)\n"
                          "            except OSError:\n                pass\n")
    run, counts = _warm(build, stage)
    assert counts == {"tests": 1, "failures": 0, "errors": 0, "skipped": 0}, run.output
    again, counts = _warm(build, _stage(build, "def test_ok():\n    pass\n"))
    assert counts["tests"] == 1 and _server_pids() == before, "the server was killed by a run"


def test_a_hanging_run_times_out_and_its_leftovers_are_killed(build):
    stage = _stage(build, "import subprocess, time\n\ndef test_hang():\n"
                          "    subprocess.Popen(['sleep', '300'])\n    time.sleep(300)\n")
    started = time.monotonic()
    run, counts = _warm(build, stage, timeout=3)
    assert run.timed_out and run.returncode is None and time.monotonic() - started < 30
    left = _stage(build, "import subprocess\n\ndef test_leaves():\n    subprocess.Popen(['sleep', '300'])\n")
    run, counts = _warm(build, left)
    assert counts["failures"] == 0 and run.left_running == 1, (run.left_running, run.output)


def test_limits_apply_to_each_run(build):
    with temporary_settings(sandbox_memory_mb=200, sandbox_processes=20):
        memory, _ = _warm(build, _stage(build, "def test_big():\n    x = bytearray(800 * 2**20)\n"))
        bomb, _ = _warm(build, _stage(build, "import os, time\n\ndef test_bomb():\n    for _ in range(200):\n"
                                             "        if os.fork() == 0:\n            time.sleep(60)\n"
                                             "            os._exit(0)\n    time.sleep(60)\n"), timeout=50)
        # A loop that returns at once: its processes are counted when it ends, not only while it runs.
        quick, _ = _warm(build, _stage(build, "import os, time\n\ndef test_loop():\n    for _ in range(25):\n"
                                              "        if os.fork() == 0:\n            time.sleep(60)\n"
                                              "            os._exit(0)\n"), timeout=50)
    assert memory.returncode != 0 and "MemoryError" in memory.output, memory.output[-500:]
    assert not bomb.timed_out and bomb.limit == "more than 20 processes at once", (bomb.limit, bomb.output[-500:])
    assert quick.limit == "more than 20 processes at once", (quick.limit, quick.output[-500:])


def test_a_run_sees_no_key_no_prefect_setting_and_a_private_home(build, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    stage = _stage(build, "import os, tempfile\n\ndef test_env():\n"
                          "    assert 'ANTHROPIC_API_KEY' not in os.environ and 'PREFECT_API_URL' not in os.environ\n"
                          f"    assert os.environ['HOME'] != {os.environ.get('HOME', '/root')!r}\n"
                          "    assert tempfile.gettempdir() == os.environ['HOME']\n"
                          "    open(os.path.join(os.environ['HOME'], 'x'), 'w').write('ok')\n")
    run, counts = _warm(build, stage)
    assert counts == {"tests": 1, "failures": 0, "errors": 0, "skipped": 0}, run.output


def test_off_or_networked_runs_are_cold(build):
    with temporary_settings(warm_tests=False):
        assert not warm.usable(False)
        assert warm.run_pytest(["-q"], str(build), 10, [], [str(build)], str(build), str(build / "r.xml")) is None
    assert not warm.usable(True)
