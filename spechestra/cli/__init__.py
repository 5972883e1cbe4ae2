"""The `spechestra` command (entry point `spechestra.cli:main`).

`main` is where every error ends: a `SpechestraError` (something the user can act on) prints
one line and exits with its class's code; a usage error is click's one line (exit 2); anything
else is a bug in Spechestra, printed with its traceback, saying so (exit 70).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import traceback
from typing import Optional

import click
import typer

from .. import install_check, redaction, stopping
from ..core.llm_calls import chain
from ..errors import SpechestraError
from ..settings import export
from ..streams import fresh_line, track_line_ends
from . import doctor as checks
from . import exiting, watchdog
from .app import app
from .consoles import err, fit_to_output
from .startup import import_prefect_quietly

__all__ = ["app", "main"]

#: Exit code of a bug in Spechestra (sysexits' EX_SOFTWARE), not a problem with the user's input.
BUG = 70
#: Exception types (by name: no client library is imported) that mean a server did not answer.
UNREACHABLE = ("ConnectError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError")


def main(argv: Optional[list[str]] = None) -> int:
    """Without `argv`, the process's own command (the console script, `python -m spechestra`),
    which ends the process (`exiting`); with it, a command run in-process, which leaves nothing
    running behind it."""
    code = _command(sys.argv[1:] if argv is None else argv, own_process=argv is None)
    if argv is None:
        exiting.end_process(code)
    return code


def _command(args: list[str], own_process: bool) -> int:
    watchdog.watch_until_exit(own_process)
    # Prefect's local server would otherwise send usage telemetry (and log each failure to).
    export("PREFECT_SERVER_ANALYTICS_ENABLED", "false", only_if_unset=True)
    # Prefect 3.9's client telemetry: the same choice for the client (its first-run notice would
    # otherwise land in the middle of a command's output). Set DO_NOT_TRACK=0 to keep it.
    export("DO_NOT_TRACK", "1", only_if_unset=True)
    redaction.install()  # keys in the environment never reach the terminal, logs or Prefect
    fit_to_output()
    if own_process:
        track_line_ends()
    stopping.reset()  # a stop an earlier command in this process was given (main called in-process) is not ours
    if args[:1] != ["doctor"]:
        report = install_check.check()
        if not report.ok:
            err.print(report.explain())
            return 2
    if own_process:
        import_prefect_quietly(args)
    code = _run(args)
    if stopping.requested():  # however the interrupt surfaced (Prefect ends a flow run with it too)
        fresh_line()
        err.print(f"stopped ({stopping.reason()}): no new LLM call was started and nothing more was run; "
                  "answers already paid for are kept: run the same command again to resume", highlight=False,
                  soft_wrap=True)
        return 128 + (signal.SIGTERM if stopping.reason() == "SIGTERM" else signal.SIGINT)
    return code


def _run(args: list[str]) -> int:
    try:
        with _stop_on_signals():
            code = app(args=args, standalone_mode=False)
    except (typer.Exit, click.exceptions.Exit) as exc:
        return exc.exit_code
    except (typer.Abort, click.exceptions.Abort, KeyboardInterrupt):
        if not stopping.requested():
            err.print("aborted")
        return 130
    except (typer.TyperException, click.ClickException) as exc:  # usage errors (typer's own copy of click's)
        if not hasattr(exc, "format_message"):
            return _bug(exc)
        message = " ".join(exc.format_message().split())  # its own line names the option
        err.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
        return getattr(exc, "exit_code", 2)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except SpechestraError as exc:
        return _user_error(str(exc), exc.exit_code)
    except OSError as exc:  # the machine's, not ours: a full disk, a permission, a missing file
        return _user_error(str(exc), 1)
    except BaseException as exc:
        if type(exc).__name__ == "TerminationSignal":  # Prefect's SIGTERM while a flow ran
            stopping.request("SIGTERM")
            return 128 + signal.SIGTERM
        if not isinstance(exc, Exception):
            raise
        unreachable = next((link for link in chain(exc) if type(link).__name__ in UNREACHABLE), None)
        if unreachable is not None:
            return _user_error(f"the Prefect API did not answer ({type(unreachable).__name__}: {unreachable}); "
                               "check PREFECT_API_URL (`spechestra settings`) and `spechestra server status`", 1)
        return _bug(exc)
    return code if isinstance(code, int) else 0


@contextlib.contextmanager
def _stop_on_signals():
    """Ctrl-C and SIGTERM stop the command at once: the main thread gets KeyboardInterrupt (as
    Python gives it for Ctrl-C), and the build's threads see `stopping` at their next step, so
    no call starts after the signal and running tests end (they hear it as it lands: `stopping`).
    The handlers are the caller's again afterwards (the CLI also runs inside test processes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, _frame):
        stopping.request(stopping.HEARD[signum])
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in stopping.HEARD}
    stop_listening = stopping.listen()
    try:
        yield
    finally:
        stop_listening()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _user_error(message: str, code: int) -> int:
    fresh_line()
    err.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    cause = checks.problem()  # a server that cannot start (a too-new database) shows up as a bare timeout
    if cause:
        err.print(cause, markup=False)
    return code


def _bug(exc: BaseException) -> int:
    fresh_line()
    cause = checks.problem()
    if cause:  # not our bug after all: Prefect's database is one this Prefect cannot open
        err.print(f"[red]error:[/] {type(exc).__name__}: {exc}", highlight=False)
        err.print(cause, markup=False)
        return 1
    err.print("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip(),
              markup=False, highlight=False)
    err.print(f"[red]This is a bug in Spechestra[/] ({type(exc).__name__}), not a problem with your project or "
              "settings: please report it with the traceback above.", highlight=False)
    return BUG

