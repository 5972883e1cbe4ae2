"""Reviews in a real terminal (a pseudo-terminal): the exact prompt text, no default decision,
and a pause answered elsewhere (the API, as the UI does) while the prompt waits."""

import os
import pty
import re
import select
import subprocess
import time

import pytest

from kit.cli import EXE, cli_env
from kit.runs import paused_runs
from spechestra.orchestration.pauses import resume_with_input

pytestmark = pytest.mark.timeout(300)
PROMPT = "[a]pprove, [r]eject, or [e]dit then approve [a/r/e]: "


class Terminal:
    def __init__(self, args, cwd, **env):
        if not EXE.exists():
            pytest.skip("spechestra console script not installed in this interpreter (run `make test`)")
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([str(EXE), *args], cwd=cwd, env=cli_env(None, COLUMNS="200", **env),
                                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            assert time.monotonic() < deadline, f"never saw {text!r}; saw:\n{self.seen[-3000:]}"
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536).decode("utf-8", "replace").replace("\r", "")
                except OSError:  # the command ended
                    assert text in self.seen, f"never saw {text!r}; saw:\n{self.seen[-3000:]}"
        return self.seen

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def close(self) -> int:
        code = self.proc.wait(timeout=120)
        os.close(self.master)
        return code


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
