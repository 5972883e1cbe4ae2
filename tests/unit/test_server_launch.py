"""Spechestra's servers are Prefect's own `prefect server start`, run by `spechestra.server.launch`
after it imported Prefect's server with the collector paused and froze it (a start 0.7 s of CPU
shorter). One Prefect command through the launcher: Prefect's CLI gets the arguments as given."""

import json
import subprocess
import sys

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
