"""Is the Prefect database under PREFECT_HOME one this Prefect can open?

A database migrated by a newer Prefect (say a 3.10 tried out, then the 3.9 this project pins)
makes the local server fail at start-up with only "Timed out while attempting to connect to
ephemeral Prefect API server" on screen. Reading the database's migration revision names the
cause. It reads Prefect's migration files without importing Prefect's server (sqlite3), and
Prefect's settings through its settings API when Prefect imports at all, so `spechestra doctor`
still explains an install whose Prefect is broken.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

from ..errors import ConfigurationError
from ..server.fresh_database import known_revisions, revisions_of
from ..settings import prefect_database_url, prefect_home, settings


def database_path() -> Optional[Path]:
    """The SQLite file Prefect uses here, or None (another database, or none yet)."""
    url = prefect_database_url()
    if url and not url.startswith("sqlite"):
        return None
    path = Path(url.split("///", 1)[-1]) if url else prefect_home() / "prefect.db"
    return path if path.is_file() else None


def problem() -> Optional[str]:
    """A one-paragraph explanation when the database is newer than this Prefect, else None."""
    path = database_path()
    if path is None:
        return None
    revisions = revisions_of(path)
    known = known_revisions()
    if not revisions or not known or revisions <= known:
        return None
    try:
        installed = version("prefect")
    except PackageNotFoundError:
        installed = "(not installed)"
    return (f"Prefect's database {path} was migrated by a newer Prefect than the installed "
            f"{installed} (revision {', '.join(sorted(revisions - known))} is unknown to it), "
            "so its server cannot start. Use another folder for this project's runs "
            "(export PREFECT_HOME=~/.prefect-spechestra), or reset that database "
            "(prefect server database reset -y: deletes its run history).")


def bad_settings() -> list[str]:
    """One line per setting whose value cannot be used (no Prefect import: `doctor --install`)."""
    found = []
    for _, setting in settings.items():
        try:
            setting.value()
        except ConfigurationError as exc:
            found.append(str(exc))
    return found


def sandbox_line() -> tuple[Optional[str], Optional[str]]:
    """(how generated code will run, in words; or why it will not run at all under `required`)."""
    from ..errors import SandboxUnavailable
    from ..processes import sandbox
    mode = settings.sandbox
    try:
        box = sandbox.containment()
    except SandboxUnavailable as exc:
        return None, str(exc)
    if box.sandboxed:
        return f"[green]sandbox:[/] generated code runs in {box.describe()} (SPECHESTRA_SANDBOX={mode})", None
    if mode == "off":
        return "[yellow]sandbox: off[/]: generated code runs as you, with your files and network", None
    return (f"[yellow]sandbox: unavailable[/] ({box.why_not}): generated code runs as you, with your files and "
            "network; install bubblewrap, or set SPECHESTRA_SANDBOX=required to refuse", None)


def llm_line() -> str:
    """Which LLM a compose or build would call, and whether it is set up (made, never called)."""
    from specsoloist.config import SpecSoloistConfig

    from ..providers import identity_of, resolve_provider
    if settings.api_key_block:
        return f"llm: {identity_of()} with its key from the Prefect Secret block {settings.api_key_block!r} (read at run time)"
    try:
        resolve_provider(None, SpecSoloistConfig.from_env())
    except ConfigurationError as exc:
        return f"[yellow]llm: not set up[/]: {exc}"
    return f"[green]llm:[/] {identity_of()} (set up; not called)"
