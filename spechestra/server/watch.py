"""Telling a Prefect server that is gone from one that is only slow, for whoever must stop when
it goes away (the CLI's watchdog, a Python caller's build).

Prefect's client retries every request with backoff, so work whose server was killed kept going
for minutes and ended on a bare `Connection refused`. A watcher asks the server's `/health` the
way Prefect's own client reaches it (httpx, the same proxy and TLS settings), and two cases differ:

- *gone* (nothing accepts the connection): after `SPECHESTRA_SERVER_GRACE` seconds (default 15)
  the work stops, saying so in one line;
- *slow* (the connection is accepted but no answer comes, as on a machine whose every core is
  busy): it says once that it is waiting, and gives up only after `SPECHESTRA_SERVER_HANG`
  seconds (default 180), so a loaded machine never ends a healthy build.
"""

from __future__ import annotations

import time
from typing import Optional

from ..settings import settings

POLL = 2.0
TIMEOUT = 10.0  # one probe; generous, since a slow answer is not a missing server

OK, GONE, SLOW = "ok", "gone", "slow"


def probe(api_url: str, timeout: float = TIMEOUT) -> str:
    import httpx  # Prefect's own HTTP client, so proxies and NO_PROXY apply exactly as for its calls

    from .tls import api_tls_context  # and its TLS: a server with its own CA is not "gone"
    try:
        reply = httpx.get(api_url.rstrip("/") + "/health", timeout=timeout, verify=api_tls_context())
    except httpx.ConnectError:
        return GONE
    except (httpx.HTTPError, OSError):
        return SLOW
    return OK if reply.status_code == 200 else SLOW


class Silence:
    """How long the server at `api_url` has not answered, from one probe to the next."""

    def __init__(self, api_url: str):
        self.api_url = api_url
        self.grace = settings.server_grace
        self.hang = max(self.grace, settings.server_hang)
        self.last_ok, self.warned = time.monotonic(), False

    def check(self) -> tuple[Optional[str], Optional[str]]:
        """Probe once: (why to stop, or None; a one-time warning that it is slow, or None)."""
        state = probe(self.api_url)
        silent = time.monotonic() - self.last_ok
        if state == OK:
            self.last_ok, self.warned = time.monotonic(), False
        elif state == GONE and silent >= self.grace:
            return f"has not answered for {self.grace:g}s (connection refused)", None
        elif silent >= self.hang:
            return f"accepted connections but has not answered for {self.hang:g}s", None
        elif state == SLOW and silent >= self.grace and not self.warned:
            self.warned = True
            return None, f"the Prefect server at {self.api_url} is slow to answer ({silent:.0f}s so far); going on."
        return None, None
