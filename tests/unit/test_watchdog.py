"""The server watchdog tells a server that is gone from one that is only slow (real loopback sockets)."""

import http.server
import socket
import threading

import pytest

from spechestra.server.watch import GONE, OK, SLOW, probe

pytestmark = pytest.mark.timeout(30)


def test_nothing_listening_is_gone():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        assert probe(f"http://127.0.0.1:{port}/api", timeout=2) == GONE


def test_a_listener_that_never_answers_is_slow_not_gone():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # the kernel accepts; nobody reads or replies, like a server with a stalled loop
        assert probe(f"http://127.0.0.1:{sock.getsockname()[1]}/api", timeout=1) == SLOW


@pytest.mark.parametrize("status, expected", [(200, OK), (503, SLOW)])
def test_an_answering_server(status, expected):
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status if self.path == "/api/health" else 404)
            self.end_headers()
            self.wfile.write(b"true")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert probe(f"http://127.0.0.1:{server.server_port}/api/", timeout=5) == expected
    finally:
        server.shutdown()
        server.server_close()


def test_the_stop_line_starts_a_line_of_its_own(tmp_path):
    """Prefect writes its failure to send logs without a final newline (`--- Error logging to API
    ---`, then the error); the watchdog's line came right after it: "...attempts failederror: ..."."""
    import subprocess
    import sys
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        api = f"http://127.0.0.1:{sock.getsockname()[1]}/api"  # refused: the server is gone
        script = f"""
import sys, time
from spechestra.cli.consoles import err, fit_to_output
from spechestra.streams import track_line_ends
from spechestra.cli.watchdog import watch_server
fit_to_output()  # as the process's own command does
track_line_ends()
watch_server(err, {api!r})
sys.stderr.write("--- Error logging to API ---\\nAll connection attempts failed")
time.sleep(25)
"""
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "SPECHESTRA_SERVER_GRACE": "1", "HOME": str(tmp_path)})
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.splitlines()[1:3] == ["All connection attempts failed",
                                             f"error: the Prefect server at {api} has not answered for 1s "
                                             "(connection refused), so this command stops here. Finished specs are "
                                             "kept in the project's cache: run the same command again once the "
                                             "server is back, and it resumes."], done.stderr


def test_a_local_dask_build_stopped_by_the_watchdog_ends_on_its_line(tmp_path):
    """Before: after the line, multiprocessing's resource tracker (which cleans up what the local
    cluster's processes held once the command is gone) added "UserWarning: resource_tracker: There
    appear to be 12 leaked semaphore objects to clean up at shutdown" and its source line."""
    import subprocess
    import sys
    pytest.importorskip("prefect_dask", reason="prefect-dask not installed (pip install 'spechestra[dask]')")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        api = f"http://127.0.0.1:{sock.getsockname()[1]}/api"  # refused: the server is gone
        script = f"""
import multiprocessing, time
from spechestra.cli.consoles import err, fit_to_output
from spechestra.cli.watchdog import watch_server
from spechestra.orchestration.runners import build_runner
fit_to_output()  # as the process's own command does
build_runner(2, "dask")  # the build's runner, before its cluster starts
held = multiprocessing.get_context("spawn").Lock()  # as the cluster's processes hold them (the tracker starts)
watch_server(err, {api!r})
time.sleep(25)
"""
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90,
                              env={"PATH": "/usr/bin:/bin", "SPECHESTRA_SERVER_GRACE": "1", "HOME": str(tmp_path),
                                   "PREFECT_HOME": str(tmp_path / "prefect")})
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: the Prefect server at {api} has not answered"), \
        done.stderr[-2000:]


#: How each kind of process of ours sets up its stderr before Prefect is imported there.
SETUPS = {"command": "from spechestra.cli.consoles import fit_to_output\n"
                     "from spechestra.streams import track_line_ends\n"
                     "fit_to_output()  # as the process's own command does\n"
                     "track_line_ends()",
          "dask-worker": "from spechestra.processes.dask_worker import dask_setup\n"
                         "dask_setup(None)  # as Dask does in each worker process of a build's local cluster"}


@pytest.mark.parametrize("process", sorted(SETUPS))
def test_prefect_console_lines_start_a_line_of_their_own(tmp_path, process):
    """Before: Prefect's next console line was glued to the error it wrote without a newline when
    its server was gone: "All connection attempts failed12:42:48.807 | WARNING | prefect.events...",
    in the command's own process and (seen with a Dask build whose server was killed) in a worker's."""
    import re
    import subprocess
    import sys
    script = f"""
import logging, sys
{SETUPS[process]}
from prefect.logging.configuration import setup_logging
setup_logging()  # Prefect's console handlers, as a run sets them up
from spechestra.orchestration.console_logs import one_line_for_our_errors
one_line_for_our_errors()  # what every run of ours does at its start
sys.stderr.write("--- Error logging to API ---\\nAll connection attempts failed")  # Prefect's exact writes
logging.getLogger("prefect.events.clients").warning("Unable to connect")
logging.getLogger("prefect.events.clients").warning("and again")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / "p")})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert lines[:2] == ["--- Error logging to API ---", "All connection attempts failed"], done.stderr
    stamp = r"\d\d:\d\d:\d\d\.\d{3} \| WARNING \| prefect\.events\.clients - "
    assert re.fullmatch(stamp + "Unable to connect", lines[2]) and re.fullmatch(stamp + "and again", lines[3]), \
        done.stderr
