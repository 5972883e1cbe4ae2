"""Putting a spec's files into build/, and remembering exactly what was put there.

Each spec has a record in <project>/.spechestra/manifest/<spec>.json: the spec text's hash when it
was last built, its cache key and outcome, and the hash of every file written for it. From that,
a file that differs from what Spechestra last wrote was edited by hand: a rebuild served from the
cache keeps it (and says so); rebuilding the spec, or --force, replaces it. `status` reads the
same records to report drift between specs and code.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Optional

from . import build_guard
from .fileio import atomic_write, masked_write
from .models import Outcome, SpecOutcome
from .project import Layout


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> Optional[str]:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def manifest_dir(project_dir: str) -> Path:
    return Path(project_dir) / ".spechestra" / "manifest"


def read_record(project_dir: str, name: str) -> dict:
    """What was last published for `name`; {} when nothing was, {"damaged": why} when its file
    cannot be read as a record (a torn write from outside: the next publish rewrites it)."""
    path = manifest_dir(project_dir) / f"{name.replace('/', '.')}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        return {"damaged": f"{path} cannot be read ({' '.join(str(exc).split())[:120]})"}
    return record if isinstance(record, dict) else {"damaged": f"{path} is not a record"}


def recover(layout: Layout, name: str, cache_key: str) -> Optional[SpecOutcome]:
    """A built spec whose cache entry is gone or damaged, from build/: when its record names this
    very key and every file it lists is on disk exactly as published. Nothing paid for is lost."""
    record = read_record(layout.project_dir, name)
    if record.get("cache_key") != cache_key or not record.get("published") or not record.get("files"):
        return None
    if record.get("status") not in (Outcome.BUILT.value, Outcome.CACHED.value) or \
            record.get("attempted", 0) >= record.get("published", 0):
        return None
    files = {}
    for rel, written in record["files"].items():
        try:  # one read: the bytes hashed are the text kept
            data = Path(layout.absolute(rel)).read_bytes()
            files[rel] = data.decode("utf-8")
        except (OSError, ValueError):
            return None
        if hashlib.sha256(data).hexdigest() != written:
            return None
    now = time.time()
    return SpecOutcome(name=name, status=Outcome.BUILT, files=files, started=now, ended=now,
                       notes=["recovered from build/: its cache entry was missing or damaged"])


def write_record(project_dir: str, name: str, record: dict) -> None:
    masked_write(manifest_dir(project_dir) / f"{name.replace('/', '.')}.json", json.dumps(record, indent=1))


def publish(layout: Layout, outcome: SpecOutcome, spec_text: str, cache_key: str, replace_edits: bool,
            log: Callable[[str], None] = print) -> list[str]:
    """Write a built (or cached) spec's files into build/ and record them. Returns notes about
    files edited by hand: kept unless `replace_edits` (the spec was rebuilt, or --force)."""
    with build_guard.LOCK:  # never while an uncontained test run has build/ (see build_guard)
        return _publish(layout, outcome, spec_text, cache_key, replace_edits, log)


def _publish(layout: Layout, outcome: SpecOutcome, spec_text: str, cache_key: str, replace_edits: bool,
             log: Callable[[str], None]) -> list[str]:
    previous = read_record(layout.project_dir, outcome.name).get("files", {})
    notes, written = [], {}
    for rel, content in outcome.files.items():
        path = layout.absolute(rel)
        on_disk = file_sha256(path)
        wanted = sha256(content)
        if on_disk is not None and on_disk != wanted and on_disk != previous.get(rel):
            if not replace_edits:
                notes.append(f"kept {rel}: edited by hand since Spechestra wrote it (rebuild the spec or "
                             "use --force to replace it)")
                log(f"{outcome.name}: {notes[-1]}")
                written[rel] = previous.get(rel, wanted)  # still what *we* last wrote
                continue
            notes.append(f"replaced {rel}, which had been edited by hand")
            log(f"{outcome.name}: {notes[-1]}")
        if on_disk != wanted:
            atomic_write(path, content)
        written[rel] = wanted
    write_record(layout.project_dir, outcome.name, {
        "spec": outcome.name, "spec_sha256": sha256(spec_text), "cache_key": cache_key,
        "status": outcome.status.value, "published": time.time(), "files": written})
    return notes


def record_failure(layout: Layout, outcome: SpecOutcome, spec_text: str, cache_key: str) -> None:
    """A failed or blocked spec: its files were never published; remember that it failed."""
    record = read_record(layout.project_dir, outcome.name)
    record.pop("damaged", None)
    record.update({"spec": outcome.name, "last_attempt_sha256": sha256(spec_text), "last_attempt_key": cache_key,
                   "status": outcome.status.value, "error": (outcome.error or "")[:2000], "attempted": time.time()})
    write_record(layout.project_dir, outcome.name, record)
