"""Test kit: a real PostgreSQL cluster (Debian's `postgresql` binaries) in a temp folder, on a
free loopback port, for a Prefect server a team would run.

The cluster is the test's own: `initdb` into a temp folder of its own, `postgres` started by
this kit (its PID is the one stopped or restarted), the folder removed afterwards. As root (CI),
the server runs as the `postgres` user, since PostgreSQL refuses to run as root (and the folder
is outside pytest's, which that user cannot enter).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import pytest

from .server import free_port


def bin_dir() -> Optional[Path]:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class Postgres:
    def __init__(self) -> None:
        found = bin_dir()
        if found is None:
            pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does it)")
        self.bin, self.folder, self.port = found, Path(tempfile.mkdtemp(prefix="spechestra-pg-")), free_port()
        self.data, self.log = self.folder / "data", self.folder / "postgres.log"
        self.proc: Optional[subprocess.Popen] = None
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/prefect"

    def create(self) -> "Postgres":
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(_as_owner([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                                  "--auth=trust", "-E", "UTF8"]), check=True, capture_output=True, timeout=120)
        self.start()
        subprocess.run(_as_owner([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                                  "-U", "postgres", "prefect"]), check=True, capture_output=True, timeout=60)
        return self

    def start(self, timeout: float = 60) -> None:
        self.proc = subprocess.Popen(_as_owner([str(self.bin / "postgres"), "-D", str(self.data), "-p",
                                                str(self.port), "-h", "127.0.0.1", "-k", str(self.folder)]),
                                     stdout=self.log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True)
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"postgres not ready after {timeout}s: {self.log.read_text()[-2000:]}")

    def stop(self, mode: signal.Signals = signal.SIGINT) -> None:
        """SIGINT is PostgreSQL's "fast" shutdown: every connection is cut, as in a restart."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, mode)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def restart(self, pause: float = 0.0) -> float:
        """Stop, wait `pause` seconds, start again on the same port; the seconds it was away."""
        began = time.monotonic()
        self.stop()
        time.sleep(pause)
        self.start()
        return time.monotonic() - began

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
