"""The `spechestra` command (entry point `spechestra.cli:main`)."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from .. import install_check
from ..core import local_server, redaction
from . import doctor as checks
from .app import app, err

__all__ = ["app", "main"]


def main(argv: Optional[list[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # Prefect's local server would otherwise send usage telemetry (and log each failure to).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    redaction.install()  # keys in the environment never reach the terminal, logs or Prefect
    if args[:1] != ["doctor"]:
        report = install_check.check()
        if not report.ok:
            err.print(report.explain())
            return 2
    try:
        code = app(args=args, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except local_server.ServerError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        return 1
    except Exception as exc:  # click usage errors and our own failures: one line, non-zero
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # click's, or typer's own copy
            err.print(f"[red]error:[/] {exc.format_message()}", highlight=False)  # it names the option
            return exc.exit_code
        err.print(f"[red]error:[/] {exc}", highlight=False)
        cause = checks.problem()  # a server that cannot start shows up as a bare timeout
        if cause:
            err.print(cause, markup=False)
        return 1
    return code if isinstance(code, int) else 0
