"""Finished spec builds by cache key, in <project>/.spechestra/cache/: successes only.

Ours rather than Prefect's task cache, whose records also kept failed and blocked results (a
rebuild served a failure with 0 LLM calls, and a dependent stayed "blocked" after its dependency
was fixed). Here only a built spec is ever written, atomically, and a blocked one never is; a
dependent's key holds its dependencies' keys, so it is rebuilt (or found) on what they are now.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Optional

from pydantic import ValidationError

from .fileio import masked_write
from .models import SpecOutcome

_log = logging.getLogger("spechestra.cache")


class BuildCache:
    def __init__(self, project_dir: str):
        self.root = Path(project_dir) / ".spechestra" / "cache"

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> Optional[SpecOutcome]:
        """The entry, or None: absent, or damaged (a torn write from outside: set aside and said,
        so the spec is built or recovered again, never served half and never paid for silently)."""
        path = self._path(key)
        try:
            outcome = SpecOutcome.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, ValidationError) as exc:
            aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
            with contextlib.suppress(OSError):
                path.replace(aside)
            _log.warning("build cache entry %s is damaged (%s); set aside as %s: the spec is recovered from "
                         "build/ when its files are intact, else built again", path, _short(exc), aside.name)
            return None
        return outcome if outcome.status.ok else None

    def put(self, key: str, outcome: SpecOutcome) -> bool:
        if not outcome.status.ok:
            return False
        masked_write(self._path(key), outcome.model_dump_json())
        return True

    def __contains__(self, key: str) -> bool:
        """A usable entry (a damaged one is not: `status` says "cached: no" for it)."""
        return self.get(key) is not None


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__
