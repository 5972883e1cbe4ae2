"""The managed server's port stays where it is (`server.local.home_port`): an exported
PREFECT_API_URL is still right after a restart, even when 4200 belongs to someone else."""

import socket

import pytest

from spechestra.errors import ServerError
from spechestra.server.local import DEFAULT_PORT, expected_port, free_port, home_port


def _hold(port: int, host: str = "127.0.0.1") -> socket.socket:
    """A server listening on `port` (bound as uvicorn binds)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1)
    return sock


def test_the_port_is_the_same_at_every_start(tmp_path):
    first = home_port(tmp_path, DEFAULT_PORT)
    assert home_port(tmp_path, DEFAULT_PORT) == first == int((tmp_path / "spechestra-server.port").read_text())


def test_with_its_port_taken_a_home_falls_back_to_the_same_other_port_each_time(tmp_path):
    """Before: a new random port at each start (50279, 43075, 49203...)."""
    remembered = home_port(tmp_path / "a", DEFAULT_PORT)
    with _hold(remembered):
        taken = [DEFAULT_PORT] if remembered != DEFAULT_PORT else []
        holders = [_hold(p) for p in taken if free_port(p) == p]
        try:
            again = home_port(tmp_path / "b", DEFAULT_PORT)
            (tmp_path / "b" / "spechestra-server.port").unlink()
            assert home_port(tmp_path / "b", DEFAULT_PORT) == again and 4200 <= again <= 4299
        finally:
            for sock in holders:
                sock.close()


def _left_in_time_wait() -> int:
    """A port whose server is gone, its connections still in TIME_WAIT (as a killed server's are:
    the server's side closed first)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    accepted, _ = server.accept()
    accepted.close()
    server.close()
    client.recv(1)  # the server's end of the connection is closed...
    client.close()  # ...then the client's: the server's side waits in TIME_WAIT
    return port


def test_a_restart_after_a_crash_keeps_the_port(tmp_path):
    """Before: a server killed with open connections came back on another port (4237 instead of
    4200, seen by hand), and the build still running against 4200 stopped after 15 s."""
    port = _left_in_time_wait()
    (tmp_path / "spechestra-server.port").write_text(str(port))
    assert home_port(tmp_path, DEFAULT_PORT) == port
    assert home_port(tmp_path, port) == port  # the same port given with --port is not refused either


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"], ids=["loopback", "every-interface"])
def test_an_explicit_port_that_is_taken_is_refused(tmp_path, host):
    """Also by a server listening on every interface (another Prefect, a container's port)."""
    with _hold(0, host) as sock:
        busy = sock.getsockname()[1]
        with pytest.raises(ServerError, match=f"port {busy} on 127.0.0.1 is in use: choose another with --port"):
            home_port(tmp_path, busy)


def test_the_expected_port_is_the_one_a_start_takes_and_keeps_nothing(tmp_path):
    """A link printed when no server is up (temporary mode) names the port `server start` will use."""
    home = tmp_path / "home"
    home.mkdir()
    predicted = expected_port(home)
    assert not (home / "spechestra-server.port").exists()
    assert home_port(home, DEFAULT_PORT) == predicted


def test_a_port_lost_to_another_server_while_starting_is_chosen_again_unless_it_was_asked_for(tmp_path, monkeypatch):
    """A launch that found its port taken meanwhile (`_launch` gives None): the home's own port is
    chosen again, up to PORT_TRIES; a port given with --port is never swapped for another."""
    from spechestra.server import local
    tried = []
    monkeypatch.setattr(local, "_launch", lambda home, port, *rest: tried.append(port))
    asked = free_port(0)
    with pytest.raises(ServerError, match=f"port {asked} on 127.0.0.1 is in use"):
        local.start(tmp_path / "a", port=asked, timeout=5, say=lambda line: None)
    assert tried == [asked]
    tried.clear()
    with pytest.raises(ServerError, match="no port stayed free"):
        local.start(tmp_path / "b", timeout=5, say=lambda line: None)
    assert len(tried) == local.PORT_TRIES
