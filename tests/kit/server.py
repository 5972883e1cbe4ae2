"""Test kit: a real `prefect server` on a free loopback port, and processes run against it.

Each server gets its own PREFECT_HOME (its own SQLite database); stopping it ends only the
process group this kit started.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from spechestra.server.fresh_database import copy_template
from spechestra.server.local import seeded_start, server_command

REPO = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrefectServer:
    def __init__(self, home: Path, auth: str | None = None, ca: Path | None = None, **server_settings: str):
        self.home, self.port = home, free_port()
        self.server_settings = server_settings  # Prefect server settings only the server gets
        self.auth = auth  # "user:password": the server's basic authentication (clients must send it)
        if auth:
            self.server_settings["PREFECT_SERVER_API_AUTH_STRING"] = auth
        self.ca = ca  # served over https with a certificate this CA signed (its `start` command's doing)
        self.ui = f"{'https' if ca else 'http'}://127.0.0.1:{self.port}"
        self.url = f"{self.ui}/api"
        self.proc = None
        self.log = home / "server.log"

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env.update(PREFECT_HOME=str(self.home), PREFECT_API_URL=self.url, PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]), SPECHESTRA_REVIEW_POLL="1",
                   PREFECT_LOGGING_LEVEL="INFO", COLUMNS="400")
        env.pop("SPECHESTRA_PROVIDER", None)
        if self.ca:
            env["PREFECT_API_SSL_CERT_FILE"] = str(self.ca)  # how Prefect's clients are told to trust it
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def start(self, timeout: float = 120, command: list[str] | None = None) -> "PrefectServer":
        """`command`: another server program than Spechestra's `prefect server start` (on this port)."""
        self.home.mkdir(parents=True, exist_ok=True)
        first = {}
        if not any(k.endswith("DATABASE_CONNECTION_URL") for k in self.server_settings) \
                and not (self.home / "prefect.db").exists():
            first = _seeded(self.home / "prefect.db")  # as Spechestra's own servers start: 4-5 s of CPU less
        env = self.env(PREFECT_UI_API_URL=self.url, **{**first, **self.server_settings})  # the UI calls this address
        self.proc = subprocess.Popen(command or server_command(self.port), env=env, stdout=self.log.open("w"),  # as Spechestra's own
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline, tls = time.monotonic() + timeout, self._tls()  # one TLS context for every poll
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(Exception):
                with urllib.request.urlopen(self._request("health"), timeout=2, context=tls) as reply:
                    if reply.status == 200:
                        return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"prefect server not healthy after {timeout}s: {self.log.read_text()[-3000:]}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def restart_if_down(self) -> None:
        """Started again if a test stopped or killed it (a server its module's tests share)."""
        if not self.running:
            self.start()

    def _tls(self):
        import ssl
        return ssl.create_default_context(cafile=str(self.ca)) if self.ca else None

    def _request(self, path: str) -> urllib.request.Request:
        headers = {}
        if self.auth:
            headers["Authorization"] = "Basic " + base64.b64encode(self.auth.encode()).decode()
        return urllib.request.Request(f"{self.url}/{path}", headers=headers)

    def stop(self) -> None:
        if not self.running:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)

    def kill(self) -> None:
        """kill -9 the server's whole process group: a lost machine, not a shutdown."""
        if self.running:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)

    @contextlib.contextmanager
    def client_settings(self):
        """Talk to this server from the test process (instead of the session's test server).

        Prefect's events and logs workers are one per process, each with the address it started
        with: drained on the way in and out, so this server's runs get their events (a worker of
        the session server's looked their runs up there, and every event failed) and the next
        test's do not go here."""
        from prefect.settings import PREFECT_API_URL, temporary_settings
        _drain_prefect_workers()
        try:
            with temporary_settings({PREFECT_API_URL: self.url}):
                yield
        finally:  # a server that is down gets nothing more: its workers are let go, not waited for
            _drain_prefect_workers(timeout=10 if self.running else 0)

    def run(self, args: list[str], timeout: float = 240, **env) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=REPO, env=self.env(**env), capture_output=True, text=True, timeout=timeout)

    def spawn(self, args: list[str], log: Path, **env) -> subprocess.Popen:
        return subprocess.Popen(args, cwd=REPO, env=self.env(**env), stdout=log.open("w"),
                                stderr=subprocess.STDOUT, start_new_session=True)


def processes_of_home(home: Path) -> list[int]:
    """Processes whose environment names this PREFECT_HOME (a server started for it, or a command)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if environ_of(int(entry)).get("PREFECT_HOME") == str(home):
                    state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry))
            except OSError:
                continue
    return found


def environ_of(pid: int) -> dict:
    """The environment a running process started with (`/proc/PID/environ`)."""
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode(errors="replace").split("=", 1) for p in pairs if b"=" in p)


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)


@contextlib.contextmanager
def session_server(folder: Path, timeout: float = 120):
    """The test run's server, as Prefect's `prefect_test_harness` gives it (the same ephemeral app
    and services, this process's settings pointed at it), but its database a copy of the migrated
    template (4 s of CPU less per test worker) and its imports frozen as Spechestra's own servers'
    are (the collector walked them in every full collection: 10-17 % of the server's CPU)."""
    from prefect.context import refresh_global_settings_context
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = PrefectServer(folder)  # its database PREFECT_HOME's, seeded by `start` as every kit server's
    server.start(timeout, command=[sys.executable, "-m", "kit.ephemeral_server", str(server.port)])
    try:
        # Prefect's own threads (the events and logs workers) read the process's global settings,
        # built from the environment: rebuilt with the URL in it (then the environment is as it was,
        # so that the commands a test starts get the server only where the test says so).
        os.environ["PREFECT_API_URL"] = server.url
        try:
            refresh_global_settings_context()
        finally:
            del os.environ["PREFECT_API_URL"]
        with temporary_settings({PREFECT_API_URL: server.url}):
            yield server
            _drain_prefect_workers()
    finally:
        server.stop()


def _drain_prefect_workers(timeout: float = 10) -> None:
    """What this process still has to send (logs, events) sent before its server stops. Drained
    workers are gone at once (the next run's logs and events start new ones, with the address
    of the moment); `timeout` is only how long to wait for what they hold."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    def drain() -> None:  # in a thread of its own: where an event loop runs (Playwright's), drain_all
        for worker in (APILogWorker, EventsWorker):  # only returns a coroutine, and drains nothing
            with contextlib.suppress(Exception):
                worker.drain_all(timeout=timeout, at_exit=False)

    thread = threading.Thread(target=drain, name="kit-drain-prefect-workers")
    thread.start()
    thread.join()


def _seeded(database: Path) -> dict[str, str]:
    """The migrated template copied to `database`; the setting a server's first start on it then
    gets, as Spechestra's own servers do (no block registration when the template holds them)."""
    return seeded_start(copy_template(database))
