"""What a person at a terminal sees of a build: the live panel and Prefect's own log lines share
the screen without either erasing the other (replayed through a terminal emulator)."""

import re

import pytest

from kit.build import write_chain_project
from kit.terminal import Terminal

pytestmark = pytest.mark.timeout(300)
PREFECT_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (INFO|WARNING) +\| ")


def test_prefect_log_lines_stay_whole_above_the_live_panel(tmp_path):
    """Before: Prefect's handler wrote past the live display, whose next refresh moved the cursor
    up over those lines and erased them: "Finished in state ..." vanished or was cut mid-line."""
    project = tmp_path / "p"
    write_chain_project(project)
    term = Terminal(["build", "--project", str(project), "--workers", "1"], tmp_path,
                    SPECHESTRA_PROVIDER="kit.build:slow_chain_provider", CALL_LOG=str(tmp_path / "calls"),
                    CALL_SECONDS="0.4")
    assert term.close(timeout=240) == 0, term.seen[-3000:]
    screen = term.screen()
    text = "\n".join(screen)
    assert re.search(r"Finished in state Completed", text), text[-3000:]
    prefect_lines = [line for line in screen if "Finished in state" in line or "Beginning flow run" in line]
    assert prefect_lines and all(PREFECT_LINE.match(line) for line in prefect_lines), "\n".join(prefect_lines)
    # The panel was transient: its header ("N of 4 specs done · 0:03 elapsed") is gone at the end,
    # and no line holds the panel's text run into a log line.
    assert not [line for line in screen if "elapsed" in line and "specs done" in line], text[-3000:]
    assert re.search(r"^4 compiled, 0 cached, 0 failed", text, re.M), text[-3000:]
