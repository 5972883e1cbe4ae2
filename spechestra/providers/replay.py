"""Record and replay LLM answers, keyed by a stable hash of the prompt.

This is how Spechestra runs offline: the demo and the tests answer every prompt from files
recorded once. A missing answer is an error that names the key and the prompt's first line,
so a changed prompt is easy to spot and re-record.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Optional

from ..core.fileio import masked_write
from ..errors import ProviderError


def prompt_key(prompt: str) -> str:
    """sha256 of the exact prompt text (UTF-8), first 20 hex digits."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:20]


class ReplayMissError(ProviderError, LookupError):
    """No recorded response for a prompt."""


def _first_line(prompt: str) -> str:
    for line in prompt.splitlines():
        if line.strip():
            return line.strip()[:100]
    return ""


class ReplayProvider:
    """Answers from `<directory>/<key>.json` files ({"prompt": ..., "response": ...})."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"replay directory not found: {self.directory}")

    def generate(self, prompt: str, temperature: float = 0.1, model: Optional[str] = None) -> str:
        key = prompt_key(prompt)
        path = self.directory / f"{key}.json"
        if not path.exists():
            raise ReplayMissError(
                f"no recorded response for prompt key {key} in {self.directory} "
                f"(prompt starts: {_first_line(prompt)!r})")
        return json.loads(path.read_text(encoding="utf-8"))["response"]


class RecordingProvider:
    """Delegates to `inner` and writes each prompt/response pair for later replay."""

    def __init__(self, inner, directory: str | os.PathLike):
        self.inner = inner
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def generate(self, prompt: str, temperature: float = 0.1, model: Optional[str] = None) -> str:
        response = self.inner.generate(prompt, temperature=temperature, model=model)
        record = {"key": prompt_key(prompt), "prompt": prompt, "response": response}
        masked_write(self.directory / f"{record['key']}.json", json.dumps(record, indent=1) + "\n")
        return response
