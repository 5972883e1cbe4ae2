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
