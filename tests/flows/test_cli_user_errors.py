"""The CLI's user errors that need the server or a provider, in-process through `main()` (as
tests/unit/test_cli_errors.py does without a server): each is one line naming the problem, exit 1
(2 for usage), and nothing paid for. The console script itself is run as a subprocess by
tests/e2e/test_cli.py; these cases only differ in their arguments, so they pay for no interpreter."""

import pytest

import kit
from kit.cli import main_in_process as _run
from kit.cli import prefect_console_restored  # noqa: F401  (a fixture: used by every test here)

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("prefect_console_restored")]


@pytest.mark.parametrize("case, args, code, message", [
    ("a file as project", ["compose", "x", "--project", "{tmp}/afile", "--yes"], 1, "is a file, not a folder"),
    ("a binary spec", ["build", "--project", "{tmp}/binary"], 1, "binary/src/x.spec.md is not a text file"),
    ("no specs", ["build", "--project", "{tmp}/empty"], 1, "no specs in"),
    ("unknown --specs", ["build", "--project", "{tmp}/binary", "--specs", "nosuch"], 1, "no spec named 'nosuch'"),
    ("--workers 0", ["build", "--project", "{tmp}/empty", "--workers", "0"], 2, "'--workers'"),
    ("trace: not an id", ["trace", "not-a-uuid"], 2, "'not-a-uuid' is not a flow run id"),
    ("trace: unknown id", ["trace", "3f2c5d4e-0000-4000-8000-000000000000"], 1, "no flow run 3f2c5d4e-0000"),
    ("review: not an id", ["review", "not-a-uuid", "--approve"], 2, "'not-a-uuid' is not a flow run id"),
    ("an escaping config file", ["build", "--project", "{tmp}/escape"], 1, "'../../evil.toml', which is refused"),
    ("arrangement: bad YAML", ["build", "--project", "{tmp}/yaml"], 1,
     "yaml/arrangement.yaml is not a valid arrangement: expected ',' or ']', but got ':' (line 2, column 6)"),
    ("arrangement: bad fields", ["graph", "--project", "{tmp}/fields"], 1,
     "fields/arrangement.yaml is not a valid arrangement: target_language: Input should be a valid string"),
    ("arrangement: a folder", ["status", "--project", "{tmp}/folder"], 1, "cannot read"),
])
def test_errors_are_one_clear_line(tmp_path, capsys, monkeypatch, case, args, code, message):
    """Issue 9: each of these was a traceback, `error: None`, a codec error with no file name, or
    exit 0; now one line naming the problem, exit 1 (2 for usage), and nothing paid for."""
    (tmp_path / "afile").write_text("")
    (tmp_path / "empty").mkdir()
    (tmp_path / "binary" / "src").mkdir(parents=True)
    (tmp_path / "binary" / "src" / "x.spec.md").write_bytes(b"\x00\xff\xfe binary")
    (tmp_path / "escape" / "src").mkdir(parents=True)
    (tmp_path / "escape" / "src" / "a.spec.md").write_text("---\nname: a\ntype: function\n---\n")
    (tmp_path / "escape" / "arrangement.yaml").write_text(
        "target_language: python\noutput_paths:\n  implementation: '{name}.py'\n  tests: 'test_{name}.py'\n"
        "environment:\n  config_files:\n    ../../evil.toml: x\nbuild_commands:\n  test: pytest\n")
    for name, arrangement in (("yaml", "target_language: [python\n  bad: : :\n"), ("fields", "target_language: 5\n"),
                              ("folder", None)):
        (tmp_path / name / "src").mkdir(parents=True)
        (tmp_path / name / "src" / "a.spec.md").write_text("---\nname: a\ntype: function\n---\n")
        if arrangement is None:
            (tmp_path / name / "arrangement.yaml").mkdir()
        else:
            (tmp_path / name / "arrangement.yaml").write_text(arrangement)
    calls = tmp_path / "calls.txt"
    for name, value in dict(SPECHESTRA_PROVIDER="kit.build:timed_wide_provider", CALL_TIMES=str(calls),
                            CALL_SECONDS="0").items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    done, out, err = _run(capsys, [a.replace("{tmp}", str(tmp_path)) for a in args])
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert done == code and len(errors) == 1, out[-2000:] + err[-2000:]
    assert message in " ".join(err.split()), err[-2000:]
    assert "Traceback" not in out + err and not calls.exists()  # no LLM call was made
    assert not (tmp_path / "evil.toml").exists() and not tmp_path.parent.joinpath("evil.toml").exists()


def test_perform_and_trace_errors_are_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.spec.md").write_text(kit.spec_markdown("a"))
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, ["perform", "a", "--project", str(tmp_path), "--yes"])
    assert code == 1 and "'a' is a 'function' spec" in err, err
    code, _, err = _run(capsys, ["perform", "a", "--project", str(tmp_path), "--input", "novalue"])
    assert code == 2 and "KEY=VALUE" in err, err
    code, _, err = _run(capsys, ["trace"])
    assert code == 2 and "either a FLOW_RUN_ID or --workflow" in err, err
    code, _, err = _run(capsys, ["trace", "--workflow", "never-ran"])
    assert code == 1 and "no runs of workflow 'never-ran'" in err, err


def test_the_server_watch_ends_with_the_command(tmp_path, capsys):
    """Before: the watch a command starts on its server (which ends the process when the server
    goes away) outlived the command; `main()` called in-process left it running, and a server
    stopped later ended the caller's process (here, a test worker: seen in a suite run)."""
    import threading

    from spechestra.cli.watchdog import THREAD_NAME
    (tmp_path / "src").mkdir()
    code, _, err = _run(capsys, ["build", "--project", str(tmp_path)])  # a watched command, failing in its body
    assert code == 1 and "no specs in" in err, err
    for thread in [t for t in threading.enumerate() if t.name == THREAD_NAME]:
        thread.join(timeout=10)
        assert not thread.is_alive(), "the server watch outlived its command"


def test_a_stop_an_earlier_command_was_given_does_not_stop_the_next(tmp_path, capsys):
    """Before: after a run in this process whose server went away (its stop is process-wide),
    every later `main()` ended "stopped (the Prefect server stopped answering)", exit 130, whatever
    it was asked (seen when this file ran after tests/e2e/test_resume.py on one worker)."""
    from spechestra import stopping
    (tmp_path / "afile").write_text("")
    stopping.request("the Prefect server stopped answering")  # what the earlier run's watch left
    try:
        code, _, err = _run(capsys, ["graph", "--project", str(tmp_path / "afile")])
    finally:
        stopping.reset()
    assert code == 1 and "is a file, not a folder" in err and "stopped" not in err, err


def test_the_process_own_command_keeps_its_server_watch_until_it_exits(tmp_path):
    """The console script (`main()` without argv): Prefect's exit-time flush of events and logs
    waits on a dead server for minutes, so there the watch lasts until the process exits (with it
    ended at the command's end, a build whose server stopped as it finished hung over 120 s)."""
    import subprocess
    import sys

    from kit.cli import cli_env
    from spechestra.cli.watchdog import THREAD_NAME
    (tmp_path / "src").mkdir()
    script = ("import atexit, sys, threading\nfrom spechestra.cli import main\n"
              f"sys.argv = ['spechestra', 'build', '--project', {str(tmp_path)!r}]\n"
              "def at_exit():\n"  # main() ends the process: its exit handlers are the last look
              f"    watches = [t for t in threading.enumerate() if t.name == {THREAD_NAME!r}]\n"
              "    [t.join(timeout=8) for t in watches]\n"  # an ended watch is gone within a poll (2 s)
              "    print(any(t.is_alive() for t in watches))\n"
              "atexit.register(at_exit)\nmain()\n")
    done = subprocess.run([sys.executable, "-c", script], env=cli_env(None), capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stdout.split()) == (1, ["True"]), done.stdout[-2000:] + done.stderr[-2000:]
