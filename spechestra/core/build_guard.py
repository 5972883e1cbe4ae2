"""build/ kept as it was around a test run that nothing contains (`SPECHESTRA_SANDBOX=off`, or
neither bubblewrap nor Landlock works here).

With the sandbox build/ is read-only to tests, and Landlock does the same without it. With
neither, a generated test can write anywhere: a `build/conftest.py` that turns every failure into
a pass, or a dependency's module rewritten, would change what later specs are tested against.
So such a run holds `LOCK` (publishing holds it too, so nothing else changes build/ meanwhile),
build/ is copied before it, and anything the run added, changed or removed is put back after it;
the run then counts as failed, saying what its tests changed.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

LOCK = threading.RLock()
RECORDS = ".spechestra"  # Spechestra's own records (staging, manifests): not what tests import


def _state(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for folder, dirs, files in os.walk(root):
        if Path(folder) == root and RECORDS in dirs:
            dirs.remove(RECORDS)
        for name in files:
            path = Path(folder) / name
            stat = path.lstat()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


class Kept:
    """`with Kept(build, tmp) as kept:` around the run; `kept.undone` lists what it put back."""

    def __init__(self, build: str, tmp: str):
        self.build, self.copy = Path(build), Path(tmp) / "build-before"
        self.undone: list[str] = []

    def __enter__(self) -> "Kept":
        LOCK.acquire()
        try:
            shutil.copytree(self.build, self.copy, symlinks=True, ignore=shutil.ignore_patterns(RECORDS))
            self.before = _state(self.build)
        except BaseException:  # no run follows: never leave publishing locked out
            LOCK.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            after = _state(self.build)
            for rel in sorted(set(after) | set(self.before)):
                if after.get(rel) == self.before.get(rel):
                    continue
                target = self.build / rel
                if rel not in self.before:
                    target.unlink(missing_ok=True)
                    self.undone.append(f"added {rel}")
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(self.copy / rel, target)
                    self.undone.append(f"{'removed' if rel not in after else 'changed'} {rel}")
        finally:
            LOCK.release()
