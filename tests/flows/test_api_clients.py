"""Spechestra's own requests to the Prefect API verify TLS as Prefect's client does, with one
`ssl` context per process. Before: every client (one per API read) and every 2-second health
probe loaded the CA bundle again, 20-40 ms of CPU each: a quarter of a test worker's CPU."""

import ssl

from spechestra.orchestration.prefect import client, variable_value
from spechestra.server import tls
from spechestra.server.watch import OK, probe


def test_api_reads_and_health_probes_load_the_ca_bundle_once(monkeypatch, prefect_server):
    tls._context.cache_clear()  # as in a new process
    made = []
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: made.append(a or k) or real(*a, **k))
    for _ in range(5):
        with client() as c:
            c.hello()
        assert probe(prefect_server.url) == OK
        assert variable_value("spechestra-no-such-variable") is None
    assert len(made) == 1, made


def test_the_context_is_the_one_prefect_would_build_from_its_settings(tmp_path):
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY, temporary_settings

    from kit.tls import make_certificates

    ca = make_certificates(tmp_path).ca
    with temporary_settings({PREFECT_API_SSL_CERT_FILE: str(ca)}):
        trusting = tls.api_tls_context()
    assert trusting.verify_mode == ssl.CERT_REQUIRED and trusting.check_hostname
    assert [c["subject"] for c in trusting.get_ca_certs()] == [((("commonName", "Spechestra test CA"),),)]
    with temporary_settings({PREFECT_API_TLS_INSECURE_SKIP_VERIFY: True}):
        assert tls.api_tls_context().verify_mode == ssl.CERT_NONE
    assert tls.api_tls_context() is tls.api_tls_context() is not trusting
