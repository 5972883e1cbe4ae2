"""Which Prefect API this process uses: the configured one, else a local server Spechestra runs."""

from __future__ import annotations

from typing import Optional

from .. import settings
from .local import Say, start, to_stderr
from .temporary import start_temporary


def api_url_for_this_process(configured: Optional[str], say: Say = to_stderr, wait: bool = True) -> str:
    """`configured` (PREFECT_API_URL as Prefect reads it: environment, profile or .env) when set;
    else the managed server (started if need be); in temporary mode, a server that ends with
    this process."""
    if configured:
        return configured
    if settings.settings.server == "temporary":
        return start_temporary(say=say, wait=wait).api_url
    return start(say=say).api_url
