"""Test kit: a real Dask cluster as separate processes (`dask scheduler`, `dask worker`) on a
free loopback port, each worker a "machine" of its own that can be killed."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from .server import BIN, free_port, stop_process


class DaskCluster:
    def __init__(self, folder: Path, env: dict, workers: int = 2):
        self.folder, self.env, self.count = folder, env, workers
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler = None
        self.workers: list[subprocess.Popen] = []

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen:
        return subprocess.Popen([str(BIN / "dask"), *args], env=self.env, stdout=(self.folder / log).open("w"),
                                stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout: float = 60) -> "DaskCluster":
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scheduler = self._spawn(["scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--no-dashboard"], "scheduler.log")
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError((self.folder / "scheduler.log").read_text()[-2000:])
                time.sleep(0.2)
        self.workers = [self._worker(i) for i in range(self.count)]
        self._wait_for_workers(timeout)
        return self

    def _worker(self, i: int) -> subprocess.Popen:
        return self._spawn(["worker", self.address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                            "--name", f"w{i}"], f"worker{i}.log")

    def _wait_for_workers(self, timeout: float) -> None:
        from distributed import Client
        with Client(self.address, timeout=timeout) as client:
            client.wait_for_workers(self.count, timeout=timeout)

    def revive(self, timeout: float = 60) -> None:
        """Every worker a test killed started again (a cluster shared by several tests)."""
        dead = [i for i, proc in enumerate(self.workers) if proc.poll() is not None]
        for i in dead:
            self.workers[i] = self._worker(i)
        if dead:
            self._wait_for_workers(timeout)

    def kill_worker(self, index: int) -> set[int]:
        """kill -9 one worker's processes (the nanny and its worker process); the PIDs it held, so
        a test can tell what ran there. Its group's multiprocessing resource tracker is left to
        end by itself: it unlinks the semaphores the killed processes held in /dev/shm, which a
        lost machine takes with it but this one keeps (6 files left by every test run before)."""
        group = self.workers[index].pid
        members = {group} | {pid for pid in _pids() if _group_of(pid) == group}
        for pid in members - {pid for pid in members if _is_resource_tracker(pid)}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.workers[index].wait(timeout=20)
        return members

    def stop(self) -> None:
        for proc in self.workers + ([self.scheduler] if self.scheduler else []):
            stop_process(proc)


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _is_resource_tracker(pid: int) -> bool:
    try:
        return b"multiprocessing.resource_tracker" in (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


def _group_of(pid: int) -> int:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return -1
