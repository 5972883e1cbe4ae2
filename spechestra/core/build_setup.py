"""An arrangement's environment, prepared once per build before any spec compiles.

As upstream: `environment.config_files` are written verbatim, `static` files and folders are
copied, `environment.setup_commands` run. All of it lands in (and runs in) the build dir, where
the arrangement's output paths are resolved too. Setup never fails a build on its own: a command
whose tool is not installed is skipped, a failing command is reported, and the specs' own tests
say whether the environment was good enough. No Prefect here; the task wrapper is in `orchestration.build`.
"""

from __future__ import annotations

import os
import shlex
import shutil
from typing import Callable

from ..processes.reaped import run_reaped
from .fileio import atomic_copy, atomic_write, inside
from .project import Layout

SETUP_TIMEOUT = 600.0


def needs_setup(layout: Layout) -> bool:
    arr = layout.arrangement
    return bool(arr and (arr.environment.config_files or arr.static or arr.environment.setup_commands))


def prepare(layout: Layout, log: Callable[[str], None] = print) -> list[str]:
    """Apply the arrangement's environment; returns one line per thing done or skipped."""
    arr = layout.arrangement
    if arr is None:
        return []
    notes: list[str] = []
    os.makedirs(layout.build_dir, exist_ok=True)
    for rel, content in arr.environment.config_files.items():
        atomic_write(layout.absolute(rel), content)
        notes.append(f"wrote config file {rel}")
    for entry in arr.static:
        notes.append(copy_static(layout, entry.source, entry.dest, entry.overwrite))
    for command in arr.environment.setup_commands:
        notes.append(run_setup_command(command, layout))
    for line in notes:
        log(line)
    return notes


def copy_static(layout: Layout, source: str, dest: str, overwrite: bool) -> str:
    try:
        src = inside(layout.project_dir, source)
        target = layout.absolute(dest)
    except ValueError as exc:
        return f"static {source!r} -> {dest!r} refused: {exc}"
    if not src.exists():
        return f"static {source} skipped: not found in {layout.project_dir}"
    if target.exists() and not overwrite:
        return f"static {source} skipped: {dest} exists and overwrite is false"
    if src.is_dir():
        shutil.copytree(src, target, dirs_exist_ok=True)
    else:
        atomic_copy(src, target)
    return f"copied static {source} -> {dest}"


def run_setup_command(command: str, layout: Layout) -> str:
    """Contained like generated code (an arrangement can come from anyone), writing only the build
    dir; with the network, which installers (`uv sync`, `npm install`) need."""
    try:
        tool = shlex.split(command)[0]
    except (ValueError, IndexError):
        return f"setup command {command!r} skipped: cannot parse it"
    if shutil.which(tool) is None:
        return f"setup command {command!r} skipped: {tool!r} is not installed"
    done = run_reaped(["/bin/sh", "-c", command], layout.build_dir, SETUP_TIMEOUT, writable=[layout.build_dir],
                      network=True, declared_env=layout.declared_env())
    if done.timed_out:
        return f"setup command {command!r} timed out after {SETUP_TIMEOUT:g}s"
    if done.limit:
        return f"setup command {command!r} stopped: it used {done.limit}"
    if done.returncode != 0:
        tail = done.output.strip().splitlines()[-3:]
        return f"setup command {command!r} failed (exit {done.returncode}): {' | '.join(tail)}"
    return f"ran setup command {command!r} ({done.contained})"
