"""How Spechestra's own requests to the Prefect API verify TLS: as Prefect's client does, with one
`ssl` context per process instead of one per client.

Prefect's client verifies an https server against PREFECT_API_SSL_CERT_FILE (else certifi's
bundle), or not at all with PREFECT_API_TLS_INSECURE_SKIP_VERIFY, and builds that context anew for
every client it makes: loading the CA bundle is 20-40 ms of CPU here, for an http server too.
Spechestra makes a client per API read and asks the server's health every 2 s while work runs,
so the contexts cost more than the requests (a quarter of a test worker's CPU). Prefect's client
uses a context it is given (`httpx_settings={"verify": ...}`) as it is.

A context is kept per (cert file, skip-verify) pair: a changed setting gets a new one; a cert
file rewritten in place is read again by the next process.
"""

from __future__ import annotations

import functools
import ssl
from typing import Optional

from ..settings import prefect_value


def api_tls_context() -> ssl.SSLContext:
    """The context Prefect's client would build for its API now (Prefect's settings: environment,
    profile, .env)."""
    insecure = (prefect_value("PREFECT_API_TLS_INSECURE_SKIP_VERIFY") or "").lower() in ("true", "1")
    return _context(prefect_value("PREFECT_API_SSL_CERT_FILE"), insecure)


@functools.lru_cache(maxsize=8)
def _context(cert_file: Optional[str], insecure: bool) -> ssl.SSLContext:
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    import certifi  # what Prefect falls back to (a dependency of Prefect and httpx)
    return ssl.create_default_context(cafile=cert_file or certifi.where())
