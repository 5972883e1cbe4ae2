"""Drift between a project's specs and its built code, from what Spechestra recorded when it
last published each spec (`publishing`): has the spec changed since, were built files edited by
hand or deleted, would a build be served from the cache, did the last attempt fail."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .build_cache import BuildCache
from .publishing import file_sha256, read_record, sha256
from .text import first_line


@dataclass
class SpecStatus:
    spec: str
    state: str                      # built | failed | blocked | never built | record damaged
    spec_changed: bool = False      # the spec text differs from the one last built
    edited: list[str] = field(default_factory=list)   # built files changed since Spechestra wrote them
    missing: list[str] = field(default_factory=list)  # built files no longer on disk
    cached: bool = False            # a build now would be served from the cache
    cached_other: bool = False      # the last build is cached, but under another provider or model
    error: str = ""

    @property
    def drifted(self) -> bool:
        return self.state != "built" or self.spec_changed or bool(self.edited or self.missing)

    def as_dict(self) -> dict:
        return asdict(self) | {"drifted": self.drifted}


def project_status(project, cache_keys: dict[str, str]) -> list[SpecStatus]:
    """One line per spec of `project` (a `planning.Project`); `cache_keys` are the keys a build
    would use now (from `Project.plan`)."""
    cache = BuildCache(project.project_dir)
    layout = project.layout()  # once: it renders the arrangement
    found = []
    for name in project.spec_names():
        record = read_record(project.project_dir, name)
        text = project.parser.read_spec(name)
        status = SpecStatus(name, "never built", cached=cache_keys.get(name, "") in cache)
        if record.get("damaged"):
            status.state, status.error = "record damaged", f"{record['damaged']}: the next build rewrites it"
        if record.get("published"):
            status.state = "built"
            last_key = record.get("cache_key") or ""
            status.cached_other = not status.cached and bool(last_key) and last_key in cache
            status.spec_changed = record.get("spec_sha256") != sha256(text)
            for rel, written in sorted(record.get("files", {}).items()):
                on_disk = file_sha256(layout.absolute(rel))
                if on_disk is None:
                    status.missing.append(rel)
                elif on_disk != written:
                    status.edited.append(rel)
        if record.get("status") in ("failed", "blocked") and record.get("attempted", 0) >= record.get("published", 0):
            status.state, status.error = record["status"], first_line(record.get("error"), 200)
            status.spec_changed = record.get("last_attempt_sha256") != sha256(text)
        found.append(status)
    return found
