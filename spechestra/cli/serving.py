"""What a command that talks to Prefect needs first: an API to talk to, and a watch on it.

`@needs_server()` puts it in one place. Before the command's body runs: its own checks of its
arguments (`validate`, so a usage error costs no server), then the configured PREFECT_API_URL
(environment, Prefect profile or `.env`, read through Prefect's settings) or else the managed
local server (started if need be) or, in temporary mode, a server of this command's own; then,
for long commands, the watchdog that ends the command when that server goes away.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

from ..settings import settings, variable_is_set
from .consoles import err, say


def server_url() -> str:
    """The API this command uses. In temporary mode the server boots while Prefect imports (its
    start is mostly Prefect's own import), and is ended at once if a profile names another."""
    from ..server.temporary import start_temporary, stop_temporary
    early = not variable_is_set("PREFECT_API_URL") and settings.server == "temporary"
    if early:
        start_temporary(say=say, wait=False)
    from ..orchestration.prefect import configured_api_url
    from ..server.address import api_url_for_this_process
    configured = configured_api_url()
    if configured and early:
        stop_temporary()
    return api_url_for_this_process(configured, say=say, wait=False)


def needs_server(watch: bool = True, validate: Optional[Callable[..., None]] = None):
    def decorate(command):
        @functools.wraps(command)
        def body(**arguments):
            if validate is not None:
                validate(**arguments)
            url = server_url()
            from ..orchestration.prefect import using_api
            from .watchdog import watch_server
            with using_api(url):
                unwatch = watch_server(err, url) if watch else None
                try:
                    return command(**arguments)
                finally:
                    if unwatch is not None:
                        unwatch()
        return body
    return decorate
