"""File writes that never leave half a file behind, and never land outside their root."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .. import redaction
from ..errors import CannotWrite, ProjectError
from ..processes.control import alive


def _umask() -> int:
    """This process's umask, read without changing it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file: mkstemp's 0600 is not that


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[str]:
    """A temporary file beside `path`; renamed over it if the block succeeds, removed if not."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            if os.path.exists(tmp):
                os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, CannotWrite) and exc.errno in _WRITE_SIDE:
            raise cannot_write(path, exc) from None
        raise


#: Errors that are the target's (its disk, its folder), not a source's being read.
_WRITE_SIDE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def cannot_write(path: Path, exc: OSError) -> CannotWrite:
    """One line naming the file, why it cannot be written and what to do."""
    folder = path.parent if path.parent.exists() else next((p for p in path.parents if p.exists()), path.parent)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = f"{shutil.disk_usage(folder).free / 2**20:,.1f} MiB free"
        except OSError:
            free = "free space unknown"
        why = (f"no space left on the device ({free} in {folder}); free some space (or set TMPDIR to a "
               "larger disk) and run the same command again: what was paid for is kept")
    elif exc.errno == errno.EROFS:
        why = f"{folder} is on a read-only file system; make it writable or use a project folder that is"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        why = f"{folder} is not writable by this user; fix its permissions or use a project folder you own"
    else:
        why = exc.strerror or str(exc)
    return CannotWrite(f"cannot write {path}: {why}", path=str(path), errno=exc.errno)


def temp_prefix(name: str) -> str:
    """Temporary files carry their writer's pid, so a later run can tell a killed writer's
    leftovers (safe to delete) from another live run's file in progress (not)."""
    return f".{name}.{os.getpid()}."


_TEMP = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


def clean_stale_temp_files(root: str | os.PathLike) -> list[str]:
    """Remove temp files under `root` whose writer is gone (killed mid-write); returns them."""
    removed = []
    for path in Path(root).rglob(".*.tmp") if Path(root).is_dir() else []:
        match = _TEMP.match(path.name)
        if match and not alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(str(path))
    return removed


def atomic_write(path: str | os.PathLike, text: str) -> Path:
    """Write via a temporary file in the same directory, then rename over the target."""
    path = Path(path)
    with _replacing(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    return path


def masked_write(path: str | os.PathLike, text: str) -> Path:
    """`atomic_write` for Spechestra's own records (manifests, cache entries, traces, answers,
    outcomes): they hold text made by generated code and providers, so every known key is
    masked first. Files the user's project owns (code, config) go through `atomic_write` as given."""
    return atomic_write(path, redaction.redact(text))


def atomic_copy(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy any file (text or binary) so the target is never seen half-written."""
    target = Path(target)
    with _replacing(target) as tmp:
        shutil.copy2(source, tmp)
    return target


def inside(root: str | os.PathLike, relative: str) -> Path:
    """Resolve `relative` under `root`, refusing absolute paths and anything that escapes it."""
    if not relative or os.path.isabs(relative) or relative.startswith(("/", "\\")):
        raise ProjectError(f"path {relative!r} is absolute; only paths inside {root} are allowed", path=relative)
    root_path = Path(root).resolve()
    target = (root_path / relative).resolve()
    if target != root_path and root_path not in target.parents:
        raise ProjectError(f"path {relative!r} escapes {root_path}", path=relative)
    return target
