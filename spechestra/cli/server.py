"""`spechestra server [start|stop|status]`: the local Prefect server commands use, one function per
subcommand; with no subcommand, Prefect's server in the foreground."""

from __future__ import annotations

import typer

from ..server.local import DEFAULT_PORT
from .consoles import console, say

server_app = typer.Typer(help="The local Prefect server (API + UI) that commands use: in the foreground, or managed "
                              "in the background (start, stop, status); commands start the managed one when they "
                              "need it and no PREFECT_API_URL is configured.",
                         invoke_without_command=True, no_args_is_help=False)
PORT = typer.Option(DEFAULT_PORT, "--port", help="Port on 127.0.0.1 (default: the one this PREFECT_HOME used "
                    "before, else 4200, else one derived from PREFECT_HOME: the same at every start).",
                    show_default=False)  # "[default: 4200]" would say less than the help does


@server_app.callback()
def foreground(ctx: typer.Context, port: int = PORT):
    """With no subcommand: `prefect server start` in the foreground (Ctrl-C ends it)."""
    if ctx.invoked_subcommand is None:
        from ..server.local import home_port, prefect_home
        from .operate import serve
        home = prefect_home()
        chosen = home_port(home, port)  # 4200 taken: the same other port each time, said
        if chosen != port:
            say(f"port {port} is in use; serving on {chosen} (export PREFECT_API_URL=http://127.0.0.1:{chosen}/api)")
        raise typer.Exit(serve(home, port=chosen))


def _configured() -> tuple[str, str] | tuple[None, None]:
    """The configured PREFECT_API_URL and where it comes from, as Prefect reads it."""
    from ..settings import prefect_source, prefect_value
    url = prefect_value("PREFECT_API_URL")
    return (url, prefect_source("PREFECT_API_URL")) if url else (None, None)


@server_app.command()
def start(port: int = PORT):
    """Start the managed server for this PREFECT_HOME in the background (or show the running one)."""
    from ..server.local import start as start_managed
    url, source = _configured()
    info = start_managed(port=port, say=say)
    console.print(f"running: {info.ui_url} (pid {info.pid}, PREFECT_HOME {info.home}, log {info.log})")
    if url and url != info.api_url:
        console.print(f"note: PREFECT_API_URL={url} ({source}), so commands use that server, not this one")


@server_app.command()
def url():
    """Print the API address commands use (for `export PREFECT_API_URL=$(spechestra server url)`):
    the configured PREFECT_API_URL, else the running managed server's. Exit 1 when neither."""
    from ..server.local import prefect_home, running
    configured, _ = _configured()
    info = None if configured else running()
    if not configured and info is None:
        say(f"no server: PREFECT_API_URL is not set and no managed server runs for PREFECT_HOME {prefect_home()} "
            "(start one with `spechestra server start`)")
        raise typer.Exit(1)
    console.print(configured or info.api_url, markup=False, highlight=False, soft_wrap=True)


@server_app.command()
def stop():
    """Stop the managed server of this PREFECT_HOME."""
    from ..server.local import prefect_home
    from ..server.local import stop as stop_managed
    info = stop_managed()
    console.print(f"stopped the server on port {info.port} (pid {info.pid})" if info else
                  f"no managed server for PREFECT_HOME {prefect_home()}")


@server_app.command()
def status():
    """Which server commands use and whether it answers: the configured PREFECT_API_URL, else the
    managed one. Exit 1 when it is not running or does not answer."""
    from ..server.local import prefect_home, running, silent
    from ..server.watch import OK, probe
    from ..settings import settings
    url, source = _configured()
    if url:
        ok = probe(url, timeout=5.0) == OK  # as Prefect's client reaches it (its proxies, its TLS settings)
        console.print(f"{'answering' if ok else 'NOT answering'}: {url} (PREFECT_API_URL, {source}); "
                      "commands use it and start no local server")
        if not ok:
            raise typer.Exit(1)
        return
    info = running()
    if info is None:
        quiet = silent()
        console.print(f"not answering yet: {quiet.ui_url} (pid {quiet.pid} runs: still starting, or busy; "
                      f"PREFECT_HOME {quiet.home}, log {quiet.log})" if quiet else
                      f"not running (PREFECT_HOME {prefect_home()}; mode {settings.server})")
        raise typer.Exit(1)
    console.print(f"running: {info.ui_url} (pid {info.pid}, PREFECT_HOME {info.home}, log {info.log})")
