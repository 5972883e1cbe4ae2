"""How a command's own process ends once its work is done."""

import re

import pytest

from kit.cli import run
from kit.runs import recorded

pytestmark = pytest.mark.timeout(240)


def test_a_command_does_its_exit_work_and_a_crash_in_python_teardown_leaves_its_exit_code(tmp_path):
    """Python's teardown of the modules can crash (CPython 3.11.7, gh-113566): the command skips it,
    so a finished build exits 0; what runs at exit before it still runs (its threads end, its exit
    handlers run: a provider's library sends what it holds, Prefect its last records)."""
    from kit.build import write_chain_project
    project = tmp_path / "proj"
    write_chain_project(project)
    done = run(["build", "--project", str(project), "--workers", "1"], tmp_path,
               SPECHESTRA_PROVIDER="kit.teardown:chain_provider_with_exit_work", EXIT_WORK=tmp_path / "work")
    assert done.returncode == 0, f"exit code {done.returncode}\n" + done.stdout[-2000:] + done.stderr[-2000:]
    assert "4 compiled, 0 cached, 0 failed, 0 blocked" in done.stdout
    assert (tmp_path / "work.atexit").read_text() == "sent" and (tmp_path / "work.thread").read_text() == "sent"
    run_id = re.findall(r"Flow run ([0-9a-f-]{36})", done.stdout + done.stderr)
    assert run_id, done.stdout[-2000:]
    logs, states = recorded(run_id[-1], specs=4)
    assert any("Finished in state Completed()" in m for m in logs), logs
    assert states.count("Completed") == 4, states  # every spec's task run, as it ended
