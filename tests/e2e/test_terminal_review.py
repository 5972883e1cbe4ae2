"""Reviews in a real terminal (a pseudo-terminal): the exact prompt text, no default decision,
and a pause answered elsewhere (the API, as the UI does) while the prompt waits."""

import re

import pytest

from kit.runs import paused_runs
from kit.terminal import Terminal
from spechestra.orchestration.pauses import resume_with_input

pytestmark = pytest.mark.timeout(300)
PROMPT = "[a]pprove, [r]eject, or [e]dit then approve [a/r/e]: "


def test_the_prompt_reads_as_written_and_has_no_default(tmp_path):
    """Before: rich markup ate the brackets: `pprove, eject, or dit then approve [a/r/e] (a):`."""
    (tmp_path / "src").mkdir()
    term = Terminal(["compose", "CSV statistics", "--project", str(tmp_path)], tmp_path,
                    SPECHESTRA_PROVIDER="kit:four_component_factory")
    term.expect(PROMPT)
    assert "(a)" not in term.seen.split("Review the architecture")[-1]  # no default offered
    term.type("")  # Enter alone decides nothing: the question is asked again
    term.expect("no default: nothing is decided for you")
    term.type("r")
    term.expect("Comment (optional): ")
    term.type("too big")
    term.expect("Cancelled:")
    assert term.close() == 1 and "architecture rejected in review: too big" in " ".join(term.seen.split())
    assert "Traceback" not in term.seen and "EndedEarly" not in term.seen  # was 35 lines of ERROR traceback
    assert list((tmp_path / "src").rglob("*.spec.md")) == []


def test_a_pause_answered_elsewhere_lets_the_prompt_go_on(tmp_path):
    """Before: the prompt kept waiting, then failed with `Cannot resume a run that isn't paused!`."""
    (tmp_path / "src").mkdir()
    term = Terminal(["compose", "CSV statistics", "--project", str(tmp_path)], tmp_path,
                    SPECHESTRA_PROVIDER="kit:four_component_factory")
    term.expect(PROMPT)
    run_id = re.search(r"/runs/flow-run/([0-9a-f-]{36})", term.seen)
    waiting = [r for r in paused_runs() if run_id is None or str(r.id) == run_id.group(1)]
    assert waiting, "no paused run found"
    resume_with_input(str(waiting[-1].id), {"decision": "approve", "comment": "from the UI"})
    term.expect("Answered elsewhere", timeout=30)
    term.expect(PROMPT)  # the next pause: the written specs
    term.type("a")
    term.expect("Comment (optional): ")
    term.type("")
    assert term.close() == 0, term.seen[-3000:]
    assert len(list((tmp_path / "src").rglob("*.spec.md"))) == 4


def test_a_pause_answered_elsewhere_at_the_comment_prompt_lets_the_run_go_on(tmp_path):
    """Issue 19, before: with a decision typed and the Comment prompt waiting, an answer from
    elsewhere made the command exit 1 and left the compose run Running for good."""
    (tmp_path / "src").mkdir()
    term = Terminal(["compose", "CSV statistics", "--project", str(tmp_path)], tmp_path,
                    SPECHESTRA_PROVIDER="kit:four_component_factory")
    term.expect(PROMPT)
    term.type("r")
    term.expect("Comment (optional): ")
    run_id = re.search(r"/runs/flow-run/([0-9a-f-]{36})", term.seen)
    waiting = [r for r in paused_runs() if run_id is None or str(r.id) == run_id.group(1)]
    assert waiting, "no paused run found"
    resume_with_input(str(waiting[-1].id), {"decision": "approve", "comment": "from the UI"})
    term.expect("Answered elsewhere", timeout=30)
    term.expect(PROMPT)  # the approval from elsewhere stands: the next pause, the written specs
    term.type("a")
    term.expect("Comment (optional): ")
    term.type("")
    assert term.close() == 0, term.seen[-3000:]
    assert len(list((tmp_path / "src").rglob("*.spec.md"))) == 4
