"""`spechestra server` in the foreground, ended as a terminal ends it (Ctrl-C to its process group)
or as a service manager does (SIGTERM to the command)."""

import os
import signal
import subprocess
import time

import pytest

from kit.cli import EXE, cli_env
from kit.server import environ_of, free_port
from spechestra.server.watch import OK, probe

pytestmark = pytest.mark.timeout(240)


def _answers(port: int) -> bool:
    return probe(f"http://127.0.0.1:{port}/api", timeout=2) == OK


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_the_foreground_server_ends_as_asked_and_its_command_exits_0(tmp_path, how):
    """Before: the command cut the server's own shutdown short (Popen killed it), said "stopped
    (Ctrl-C): no new LLM call was started ... run the same command again to resume" and exited 130."""
    port = free_port()
    proc = subprocess.Popen([str(EXE), "server", "--port", str(port)], env=cli_env(tmp_path / "home"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        while not _answers(port):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=30)
            time.sleep(0.3)
        # A new home starts from the migrated template, as the managed server's does. Before, this
        # command's first start ran every migration and registered every block type (14.5 s against 6 s).
        server_env = environ_of(_children(proc.pid)[0])
        assert server_env.get("PREFECT_API_BLOCKS_REGISTER_ON_START") == "false", server_env
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C reaches the server too
        else:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
    assert proc.returncode == 0, out[-2000:] + err[-2000:]
    if how == "ctrl-c":  # Prefect's own last line after Ctrl-C: it shut down, it was not killed
        assert "Server stopped!" in out + err, out[-2000:] + err[-2000:]
    assert "LLM call" not in err and not _answers(port), err[-2000:]
    assert f"a new database for {tmp_path / 'home'} from " in err, err[-2000:]
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert left == [], left


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]
