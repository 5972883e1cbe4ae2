"""Running the `spechestra` command as a user does: a subprocess, no API key, no network.

Commands talk to the test run's shared Prefect server (as a user with a running server does),
so no command pays for a server of its own; `own_home` gives one its own PREFECT_HOME and no
server yet (the demo, as a first-time user runs it): the test must `server stop` what it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).parent / "spechestra"
TESTS = Path(__file__).resolve().parents[1]


def cli_env(home: Path | None = None, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(TESTS), "COLUMNS": "400"})
    env.pop("SPECHESTRA_PROVIDER", None)
    if home is None:
        from prefect.settings import PREFECT_API_URL
        env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    else:
        env["PREFECT_HOME"] = str(home)
        env.pop("PREFECT_API_URL", None)  # its first command starts the managed local server
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(args: list[str], cwd: Path, own_home: Path | None = None, timeout: float = 240, niceness: int = 0,
        **env) -> subprocess.CompletedProcess:
    """`niceness`: the command and what it starts (its server) run at that lower priority."""
    if not EXE.exists():
        pytest.skip("spechestra console script not installed in this interpreter (run `make test`)")
    return subprocess.run([str(EXE), *args], cwd=cwd, env=cli_env(own_home, **env), capture_output=True, text=True,
                          timeout=timeout, preexec_fn=(lambda: os.nice(niceness)) if niceness else None)


def main_in_process(capsys, argv: list[str]) -> tuple[int, str, str]:
    """`spechestra ARGV` run by `main` in this process: (exit code, stdout, stderr). Prefect's
    console handlers write to the stream they found when logging was set up; here that is this
    test's capture (use with `prefect_console_restored`, which puts them back afterwards)."""
    from spechestra.cli import main
    from spechestra.orchestration.console_logs import console_handlers
    for handler in console_handlers():
        handler.console.file = sys.stderr
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def prefect_console_restored():
    """Prefect's console handlers back on the stream they had before the test (handlers set up
    during it: the run's own stream): never left on a capture that is closed once the test ends."""
    from spechestra.orchestration.console_logs import console_handlers
    outer = sys.stderr  # requested before capsys: the test run's own stream
    kept = {handler: handler.console.file for handler in console_handlers()}
    yield
    for handler in console_handlers():
        handler.console.file = kept.get(handler, outer)
