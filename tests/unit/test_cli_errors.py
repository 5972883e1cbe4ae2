"""The CLI's error contract, in-process (no subprocess, no server): a usage error or a user error
is one line and its exit code; a bug in Spechestra is a traceback that says it is a bug."""

import pytest

from spechestra.cli import BUG, main
from spechestra.core.planning import Project


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize("argv, says", [
    (["review", "3f2c5d4e-0000-4000-8000-000000000000", "--approve", "--reject"], "exactly one of --approve or --reject"),
    (["review", "not-a-run", "--approve"], "is not a flow run id"),
    (["trace"], "give either a FLOW_RUN_ID or --workflow NAME"),
    (["perform", "wf", "--input", "novalue"], "is not KEY=VALUE"),
    (["build", "--workers", "0"], "--workers"),
    (["server", "restart"], "No such command 'restart'"),
])
def test_usage_errors_are_one_line_and_exit_2_before_any_server(capsys, argv, says, monkeypatch):
    monkeypatch.setenv("SPECHESTRA_SERVER", "no-such-mode")  # had a server been asked for, this would say so
    code, out, err = _run(capsys, *argv)
    assert code == 2 and says in _one_line(err), err


def test_a_user_error_is_one_line(capsys, tmp_path):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    code, out, err = _run(capsys, "graph", "--project", str(not_a_folder))
    assert code == 1 and _one_line(err) == f"error: the project path {not_a_folder} is a file, not a folder: give " \
                                           "the folder that holds the specs"
    assert "Traceback" not in err


def test_a_bad_setting_is_one_line_naming_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECHESTRA_SERVER", "cloud")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr("spechestra.orchestration.prefect.configured_api_url", lambda: None)
    code, out, err = _run(capsys, "build", "--project", str(tmp_path))
    assert code == 2 and "SPECHESTRA_SERVER='cloud' is not valid: expected one of managed, temporary" in _one_line(err)


def test_an_injected_bug_prints_its_traceback_and_says_it_is_a_bug(capsys, tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()

    def broken(self, specs=None):
        return self.no_such_attribute  # the kind of slip a refactor leaves behind

    monkeypatch.setattr(Project, "graph_mermaid", broken)
    code, out, err = _run(capsys, "graph", "--project", str(tmp_path))
    assert code == BUG
    assert "Traceback (most recent call last)" in err and "AttributeError" in err and "no_such_attribute" in err
    assert "This is a bug in Spechestra (AttributeError)" in " ".join(err.split())




def test_output_to_a_file_or_pipe_is_never_wrapped(capsys):
    """Before: Rich wrapped at 80 columns off a terminal: `math_utils` and `math_workflow` both
    cut to `math_…`, an error column one word per line, paths split mid-word."""
    from rich.table import Table

    from spechestra.cli.consoles import console, fit_to_output
    fit_to_output()  # what every command does first (stdout here is pytest's capture, not a terminal)
    why = "tests still failing after 3 run(s): AssertionError: expected 120 from factorial(5) but got 24"
    table = Table()
    for column in ("spec", "state", "error"):
        table.add_column(column)
    table.add_row("math_utils", "built", "")
    table.add_row("math_workflow", "failed", why)
    console.print(table)
    console.print(f"code in /tmp/{'deep/' * 30}build")
    out = capsys.readouterr().out
    assert "math_utils" in out and "math_workflow" in out and any(why in line for line in out.splitlines()), out
    assert any(f"/tmp/{'deep/' * 30}build" in line for line in out.splitlines()), out
