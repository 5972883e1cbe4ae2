"""Finished spec builds by cache key, in <project>/.spechestra/cache/: successes only.

Ours rather than Prefect's task cache, whose records also kept failed and blocked results (a
rebuild served a failure with 0 LLM calls, and a dependent stayed "blocked" after its dependency
was fixed). Here only a built spec is ever written, atomically, and a blocked one never is; a
dependent's key holds its dependencies' keys, so it is rebuilt (or found) on what they are now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import ValidationError

from .fileio import atomic_write
from .models import SpecOutcome


class BuildCache:
    def __init__(self, project_dir: str):
        self.root = Path(project_dir) / ".spechestra" / "cache"

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> Optional[SpecOutcome]:
        try:
            outcome = SpecOutcome.model_validate_json(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError, ValidationError):  # absent, or unreadable: build it again
            return None
        return outcome if outcome.status.ok else None

    def put(self, key: str, outcome: SpecOutcome) -> bool:
        if not outcome.status.ok:
            return False
        atomic_write(self._path(key), outcome.model_dump_json())
        return True

    def __contains__(self, key: str) -> bool:
        return self._path(key).exists()
