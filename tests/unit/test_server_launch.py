"""Spechestra's servers are Prefect's own `prefect server start`, run by `spechestra.server.launch`
after it imported Prefect's server with the collector paused and froze it (a start 0.7 s of CPU
shorter). One Prefect command through the launcher: Prefect's CLI gets the arguments as given."""

import json
import subprocess
import sys

from kit import server as kit_server
from kit.server import REPO

SCRIPT = """
import gc, json, sys
from spechestra.server import launch
try:
    launch.main(sys.argv[1:])
    code = 0
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "frozen": gc.get_freeze_count(), "enabled": gc.isenabled(),
                  "server": "prefect.server.api.server" in sys.modules}))
"""


def test_the_launcher_runs_prefects_command_with_the_server_imported_and_frozen():
    done = subprocess.run([sys.executable, "-c", SCRIPT, "version"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    *printed, last = done.stdout.strip().splitlines()
    after = json.loads(last)
    assert "Version:" in "\n".join(printed)  # Prefect's own `prefect version`
    assert after["code"] == 0 and after["server"] and after["enabled"] and after["frozen"] > 100_000, after


def test_a_command_killed_before_it_records_its_server_leaves_one_the_next_start_finds(tmp_path, monkeypatch):
    """Before: a command killed between starting its server and writing the state file (a few ms,
    more on a loaded machine; seen once in a full run) left that server unrecorded; the next start
    launched a second on the same database, which found the port taken and died, and `server stop`
    could never end the first. The server now records itself first thing."""
    import time

    from spechestra.processes.control import alive, stop_group
    from spechestra.server import local
    home = tmp_path / "home"
    real_write = local.atomic_write

    def killed_before_recording(path, text):
        if str(path).endswith("spechestra-server.json"):
            raise KeyboardInterrupt  # the command's end, at that very instant
        return real_write(path, text)
    monkeypatch.setattr(local, "atomic_write", killed_before_recording)
    port = local.free_port(local.DEFAULT_PORT + 37)
    said: list[str] = []
    try:
        try:
            local.start(home, port=port, timeout=120, say=said.append)
        except KeyboardInterrupt:
            pass
        monkeypatch.setattr(local, "atomic_write", real_write)
        deadline = time.monotonic() + 30
        while local._recorded(home) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        first = local._recorded(home)
        assert first is not None and alive(first.pid), "the server started was never recorded"
        again = local.start(home, port=port, timeout=120, say=said.append)
        assert again.pid == first.pid, said
        assert sum("starting local Prefect server" in line for line in said) == 1, said
    finally:
        for pid in kit_server.processes_of_home(home):  # recorded or not: every server this test started
            stop_group(pid)
