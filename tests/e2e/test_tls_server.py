"""A team's Prefect server behind TLS with a CA of its own, which Prefect's clients are told to
trust the way Prefect documents (PREFECT_API_SSL_CERT_FILE). Before: Prefect's calls trusted it,
but the command's server watchdog asked /health with certifi's bundle alone, took the refused
certificate for a server that was gone, and stopped every build after SPECHESTRA_SERVER_GRACE;
`server status` said it was not answering."""

import sys

import pytest

from kit import build as kit_build
from kit.cli import run
from kit.server import PrefectServer
from kit.tls import make_certificates

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def tls_server(tmp_path):
    certificates = make_certificates(tmp_path / "certs")
    server = PrefectServer(tmp_path / "server-home", ca=certificates.ca)
    server.start(command=[sys.executable, "-m", "kit.ephemeral_server", str(server.port),
                          "--tls", str(certificates.cert), str(certificates.key)])
    try:
        yield server
    finally:
        server.stop()


def test_a_build_on_a_server_with_its_own_ca_is_never_taken_for_a_server_gone(tmp_path, tls_server):
    project = tmp_path / "proj"
    kit_build.write_chain_project(project)
    home = tmp_path / "client-home"
    home.mkdir()
    # Eight calls of 0.5 s: the build outlasts the watchdog's first probe (2 s), past a 1-second grace.
    done = run(["build", "--project", str(project), "--workers", "1"], tmp_path, own_home=home, timeout=400,
               PREFECT_API_URL=tls_server.url, PREFECT_API_SSL_CERT_FILE=tls_server.ca, SPECHESTRA_SERVER_GRACE="1",
               SPECHESTRA_PROVIDER="kit.build:slow_chain_provider", CALL_LOG=tmp_path / "log")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "4 compiled" in done.stdout and tls_server.ui in done.stdout  # its run link: the https UI
    assert "has not answered" not in done.stderr
    # `server status` asks the same way (before: urllib's own trust store, "NOT answering", exit 1).
    status = run(["server", "status"], tmp_path, own_home=home, timeout=120, PREFECT_API_URL=tls_server.url,
                 PREFECT_API_SSL_CERT_FILE=tls_server.ca)
    assert status.returncode == 0 and f"answering: {tls_server.url}" in status.stdout, status.stdout + status.stderr
