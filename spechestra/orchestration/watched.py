"""A Python caller's build, perform or compose, ended promptly when its Prefect server goes away.

The CLI has its own watchdog (it ends the process). A library must not: here the flow call runs
in a thread of its own while the caller's thread watches the server (`server.watch`). Once the
server is gone past `SPECHESTRA_SERVER_GRACE` seconds, the work is asked to stop (`stopping`: no
call starts, tests end, paid answers stay) and the caller gets one `ServerError` line at once,
instead of a bare `ConnectError` after Prefect's client has spent minutes retrying. The flow's
thread, stuck in those retries, is a daemon and ends with them. A Ctrl-C in the caller's thread
stops the work the same way.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Callable, TypeVar

from .. import stopping
from ..errors import ServerError
from ..server.temporary import wait_ready
from ..server.watch import POLL, Silence
from .prefect import configured_api_url, in_flow_run

T = TypeVar("T")
#: Seconds a stopped flow gets to end its run (calls refused, tests ended: it needs about one).
WIND_DOWN = 15.0


def watched(work: Callable[[], T]) -> T:
    api_url = configured_api_url()
    if not api_url or in_flow_run():  # inside a caller's flow run: its own engine and thread
        return work()
    stopping.reset()  # an earlier call's stop (a Ctrl-C the caller caught) never stops this one
    with stopping.scoped() as stop:  # nor does a later call undo this one's (its thread may be in retries)
        return _watch(work, api_url, stop)


def _watch(work: Callable[[], T], api_url: str, stop: stopping.Stop) -> T:
    box: dict = {}
    done = threading.Event()
    context = contextvars.copy_context()  # the caller's settings, runtime and stop, in the flow's thread

    def run() -> None:
        try:
            box["value"] = context.run(work)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread as it is
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="spechestra-watched-flow", daemon=True).start()
    try:
        try:
            wait_ready()  # a temporary server still starting is not a server gone away
        except ServerError:
            pass  # the flow's own first call says it, in the flow's thread
        silence = Silence(api_url)
        while not done.wait(POLL):
            why, _ = silence.check()
            if why:
                stop.request("the Prefect server stopped answering")
                raise ServerError(f"the Prefect server at {api_url} {why}, so this run stops here; finished specs "
                                  "are kept in the project's cache: run it again once the server is back, and it "
                                  "resumes")
    except KeyboardInterrupt:
        stop.request("Ctrl-C")
        done.wait(WIND_DOWN)  # its specs end Stopped and its run says so (a second Ctrl-C cuts this short)
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]
