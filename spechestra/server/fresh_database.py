"""A new PREFECT_HOME's database, ready at once.

At its first start Prefect's server takes a new SQLite database through every one of its
migrations: 7.4 s of a 12.1 s first start here. An empty database this Prefect already migrated,
kept once per Prefect version in the user's cache (`make install` makes it), is the same
database; copying it takes milliseconds. It is used only where the server would create the
database itself (no file yet, Prefect's default SQLite location), and only when its migration
revision is the newest this Prefect knows: anything else is left to Prefect, as before.
The template also holds the block types a server registers at its start (0.8 s of the 5 s
left), marked with the Prefect collections installed when they were registered: a server
started on a copy skips that step only while the same collections are installed.

Plain code: Prefect's files are read, never imported; making the template runs Prefect's CLI.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Optional

from ..core.fileio import atomic_write
from ..settings import cache_dir, environment, prefect_source

#: What a Prefect server does with a new database at its start: register every block type.
_REGISTER_BLOCKS = """
import asyncio
from prefect.server.database import provide_database_interface
from prefect.server.models.block_registration import run_block_auto_registration

async def main():
    session = await provide_database_interface().session()
    async with session:
        await run_block_auto_registration(session=session)

asyncio.run(main())
"""


def migration_scripts() -> list[Path]:
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(list(spec.submodule_search_locations)[0]) / "server" / "database" / "_migrations" / "versions"
    return sorted((folder / "sqlite").glob("*.py"))


def known_revisions() -> set[str]:
    """Migration revisions the installed Prefect knows (read from its files, not imported)."""
    return {rev for rev, _ in _revisions()}


def head_revision() -> Optional[str]:
    """The newest revision: the one no other names as the one before it."""
    pairs = _revisions()
    before = {down for _, down in pairs}
    heads = [rev for rev, _ in pairs if rev not in before]
    return heads[0] if len(heads) == 1 else None


@functools.lru_cache(maxsize=1)
def _revisions() -> list[tuple[str, str]]:
    """(revision, the one before it) of every migration script: read once per process."""
    found = []
    for script in migration_scripts():
        text = script.read_text(encoding="utf-8")
        rev = re.search(r'^revision = "([0-9a-f]+)"', text, re.M)
        down = re.search(r'^down_revision = "([0-9a-f]+)"', text, re.M)
        if rev:
            found.append((rev.group(1), down.group(1) if down else ""))
    return found


def revisions_of(path: Path) -> set[str]:
    """The migration revision(s) a SQLite database was taken to (empty when unreadable)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    except sqlite3.Error:
        return set()


def template_path() -> Optional[Path]:
    try:
        prefect_version = version("prefect")
    except PackageNotFoundError:
        return None
    return cache_dir() / f"prefect-{prefect_version}-empty.db"


def _usable(template: Optional[Path]) -> bool:
    head = head_revision()
    return template is not None and template.is_file() and head is not None and revisions_of(template) == {head}


def seed(home: Path) -> Optional[Path]:
    """Before a server starts on `home`: put a migrated empty database where it would make one.
    The template it came from when it did (None: the server makes its own, as Prefect always did)."""
    target = home / "prefect.db"
    if prefect_source("PREFECT_API_DATABASE_CONNECTION_URL") != "default" or target.exists():
        return None  # a database of the user's choosing, or one that exists: never touched
    return copy_template(target)


def copy_template(target: Path) -> Optional[Path]:
    """This Prefect's migrated empty database copied to `target` (a SQLite file's path); the
    template it came from, or None when there is none to copy (nothing is written then)."""
    template = template_path()
    if template is None or not _usable(template):
        return None
    _copy(template, target)
    return template


def collections_key() -> str:
    """The Prefect collections installed (name==version): with Prefect's version, what decides
    which block types a server registers."""
    return ";".join(sorted({f"{ep.dist.name}=={ep.dist.version}" for ep in entry_points(group="prefect.collections")
                            if ep.dist is not None}))


def _blocks_mark(template: Path) -> Path:
    return template.with_name(template.name + ".blocks")


def has_blocks(template: Path) -> bool:
    """Whether `template` holds the block types a server of this install would register."""
    try:
        return _blocks_mark(template).read_text(encoding="utf-8") == collections_key()
    except OSError:
        return False


def make_template(prefect_exe: str, timeout: float = 300) -> Optional[Path]:
    """Migrate an empty database with Prefect's own CLI, register its block types as a server's
    start would, and keep it as this version's template. Returns where it is (None when it could
    not be made: seeding then just does not happen)."""
    template = template_path()
    if template is None or (_usable(template) and has_blocks(template)):
        return template
    with tempfile.TemporaryDirectory(prefix="spechestra-db-") as scratch:
        env = environment(drop=("PREFECT_API_DATABASE_CONNECTION_URL",), PREFECT_HOME=scratch,
                          PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
        made = Path(scratch) / "prefect.db"
        if not _run([prefect_exe, "server", "database", "upgrade", "-y"], env, timeout) or not _usable(made):
            return None
        key = collections_key()  # before registering: a collection installed meanwhile is not claimed
        blocks = _run([sys.executable, "-c", _REGISTER_BLOCKS], env, timeout)
        template.parent.mkdir(parents=True, exist_ok=True)
        _blocks_mark(template).unlink(missing_ok=True)
        _copy(made, template)
        if blocks:
            atomic_write(_blocks_mark(template), key)
    return template


def _run(args: list[str], env: dict, timeout: float) -> bool:
    try:
        return subprocess.run(args, env=env, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _copy(source: Path, target: Path) -> None:
    """SQLite's own backup (a consistent copy, WAL included) to a temporary file, then renamed:
    a server starting on `target` sees no database or a whole one."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        src, dst = sqlite3.connect(f"file:{source}?mode=ro", uri=True), sqlite3.connect(partial)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
