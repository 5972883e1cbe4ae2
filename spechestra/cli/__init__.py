"""The `spechestra` command (entry point `spechestra.cli:main`).

`main` is where every error ends: a `SpechestraError` (something the user can act on) prints
one line and exits with its class's code; a usage error is click's one line (exit 2); anything
else is a bug in Spechestra, printed with its traceback, saying so (exit 70).
"""

from __future__ import annotations

import sys
import traceback
from typing import Optional

import click
import typer

from .. import install_check, redaction
from ..core.llm_calls import chain
from ..errors import SpechestraError
from ..settings import export
from . import doctor as checks
from .app import app
from .consoles import err, fit_to_output

__all__ = ["app", "main"]

#: Exit code of a bug in Spechestra (sysexits' EX_SOFTWARE), not a problem with the user's input.
BUG = 70
#: Exception types (by name: no client library is imported) that mean a server did not answer.
UNREACHABLE = ("ConnectError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError")


def main(argv: Optional[list[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # Prefect's local server would otherwise send usage telemetry (and log each failure to).
    export("PREFECT_SERVER_ANALYTICS_ENABLED", "false", only_if_unset=True)
    # Prefect 3.9's client telemetry: the same choice for the client (its first-run notice would
    # otherwise land in the middle of a command's output). Set DO_NOT_TRACK=0 to keep it.
    export("DO_NOT_TRACK", "1", only_if_unset=True)
    redaction.install()  # keys in the environment never reach the terminal, logs or Prefect
    fit_to_output()
    if args[:1] != ["doctor"]:
        report = install_check.check()
        if not report.ok:
            err.print(report.explain())
            return 2
    try:
        code = app(args=args, standalone_mode=False)
    except (typer.Exit, click.exceptions.Exit) as exc:
        return exc.exit_code
    except (typer.Abort, click.exceptions.Abort, KeyboardInterrupt):
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
    except Exception as exc:
        unreachable = next((link for link in chain(exc) if type(link).__name__ in UNREACHABLE), None)
        if unreachable is not None:
            return _user_error(f"the Prefect API did not answer ({type(unreachable).__name__}: {unreachable}); "
                               "check PREFECT_API_URL (`spechestra settings`) and `spechestra server status`", 1)
        return _bug(exc)
    return code if isinstance(code, int) else 0


def _user_error(message: str, code: int) -> int:
    err.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    cause = checks.problem()  # a server that cannot start (a too-new database) shows up as a bare timeout
    if cause:
        err.print(cause, markup=False)
    return code


def _bug(exc: BaseException) -> int:
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

