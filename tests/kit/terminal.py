"""A `spechestra` command in a real pseudo-terminal: what a person at a terminal sees.

`seen` is the raw text (carriage returns dropped) for prompts; `screen()` replays every byte
through a terminal emulator (pyte), so a line drawn and then erased by a live display is gone
from it, as it is from the person's screen.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time

import pytest

from kit.cli import EXE, cli_env

COLUMNS, ROWS = 200, 400


class Terminal:
    def __init__(self, args, cwd, **env):
        if not EXE.exists():
            pytest.skip("spechestra console script not installed in this interpreter (run `make test`)")
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, True)
        import fcntl
        import struct
        import termios
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        env = {"COLUMNS": str(COLUMNS), "LINES": str(ROWS), "TERM": "xterm-256color", **env}
        self.proc = subprocess.Popen([str(EXE), *args], cwd=cwd, env=cli_env(None, **env),
                                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.raw = b""
        self.seen = ""

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the command ended and its side of the terminal closed
            return False
        if not chunk:
            return False
        self.raw += chunk
        self.seen += chunk.decode("utf-8", "replace").replace("\r", "")
        return True

    def expect(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            assert time.monotonic() < deadline, f"never saw {text!r}; saw:\n{self.seen[-3000:]}"
            if not self._read(0.5):
                assert text in self.seen, f"never saw {text!r}; saw:\n{self.seen[-3000:]}"
        return self.seen

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def close(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while self._read(0.2) and time.monotonic() < deadline:
            if self.proc.poll() is not None and not select.select([self.master], [], [], 0.2)[0]:
                break
        code = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        return code

    def screen(self) -> list[str]:
        """The terminal's lines after every byte was drawn, trailing blanks dropped."""
        import pyte
        screen = pyte.Screen(COLUMNS, ROWS)
        stream = pyte.ByteStream(screen)
        stream.feed(self.raw)  # the terminal already turned each \n into \r\n
        lines = [line.rstrip() for line in screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return lines
