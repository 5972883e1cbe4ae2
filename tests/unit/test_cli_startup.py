"""The command's own process imports Prefect with the cyclic collector paused and then frozen
(spechestra/cli/startup.py); commands that never use Prefect do not pay for its import."""

import json
import subprocess
import sys

import pytest

from kit.server import REPO

#: `main` as the console script calls it (no argv), then what the process's collector looks like.
SCRIPT = """
import atexit, gc, json, sys
from spechestra.cli import main
sys.argv = ["spechestra", *sys.argv[1:]]
atexit.register(lambda: print(json.dumps({"frozen": gc.get_freeze_count(), "enabled": gc.isenabled(),
                                          "prefect": "prefect" in sys.modules})))  # main() ends the process
main()
"""


def _after(*args: str, script: str = SCRIPT) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_command_that_uses_prefect_imports_it_frozen_with_the_collector_back_on():
    after = _after("settings")
    assert after["prefect"] and after["enabled"] and after["frozen"] > 100_000, after


@pytest.mark.parametrize("args", [("--help",), ("graph", "--help"), ("build", "--help")])
def test_help_and_graph_never_import_prefect(args):
    after = _after(*args)
    assert after == {"frozen": 0, "enabled": True, "prefect": False}, after


def test_main_called_in_process_freezes_nothing():
    assert _after("settings", script=SCRIPT.replace("main()", "main(sys.argv[1:])"))["frozen"] == 0
