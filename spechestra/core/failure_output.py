"""A failed test run's output as a fix prompt quotes it: the same for the same failure.

A fix's prompt is the key its paid answer is kept under (`llm_calls`), so a build that resumes
after a stop, a kill or a budget cap replays that answer only if the failure reads the same. Raw
pytest output does not: it names the spec's staging folder (new for every build, with a pid and
a random part), says how long the run took, and prints object addresses. Here those read as the
files' places in build/ (where they go once the tests pass, which is also what the LLM should
think of them as), without the time, and with addresses blanked.
"""

from __future__ import annotations

import os
import re

#: pytest's closing line: "1 failed, 2 passed in 0.12s" or "... in 61.50s (0:01:01) ====".
_DURATION = re.compile(r" in \d+(?:\.\d+)?s(?: \(\d+:\d{2}:\d{2}\))?(?=(?: =+)?[ \t]*$)", re.MULTILINE)
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")


def steady(output: str, stage: str, build: str) -> str:
    """`output` with the staging folder read as build/, no duration and no object addresses."""
    output = moved(output, stage, build, build)
    output = _DURATION.sub("", output)
    return _ADDRESS.sub("0x…", output)


def moved(output: str, stage: str, place: str, build: str) -> str:
    """`output` naming `place` where it named the staging folder: its absolute path, and its path
    from build/ (pytest's rootdir) as pytest names a test. A failed spec's files are kept
    elsewhere once the stage is removed: its error then names the files that are there."""
    stage, place, build = os.path.abspath(stage), os.path.abspath(place), os.path.abspath(build)
    output = output.replace(stage + os.sep, place + os.sep).replace(stage, place)
    relative, instead = os.path.relpath(stage, build), os.path.relpath(place, build)
    if not relative.startswith(os.pardir):
        output = output.replace(relative + os.sep, "" if instead == os.curdir else instead + os.sep)
    return output
