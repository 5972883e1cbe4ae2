"""The bundled demo's data: a real multi-component request, its recorded LLM answers, the
workflow inputs, and the folder it runs in. `spechestra demo` (in `cli.demo`) runs it."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import ProjectError

HERE = Path(__file__).parent
RECORDINGS = HERE / "recordings"
MARKER = ".spechestra-demo"


def request_text() -> str:
    return " ".join((HERE / "request.txt").read_text(encoding="utf-8").split())


def prepare(directory: Path) -> Path:
    """A fresh demo project folder; refuses to wipe a folder the demo did not create."""
    directory = directory.resolve()
    if directory.exists():
        if not (directory / MARKER).exists():
            raise ProjectError(f"{directory} exists and is not a demo folder; choose another --dir", path=str(directory))
        shutil.rmtree(directory)
    (directory / "src").mkdir(parents=True)
    (directory / MARKER).write_text("created by `spechestra demo`; safe to delete\n")
    return directory


DEMO_INPUTS = {
    "text": "The cat sat on the mat. The dog sat on the log; the cat and the dog are friends!",
    "n": 3,
}
