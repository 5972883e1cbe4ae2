"""Spec names that are safe to turn into file paths.

Names come from LLM answers, users' edits and spec files, and each one becomes a path
(`src/<name>.spec.md`, `build/<name>.py`), so anything that could escape its folder is refused
in one place, before anything is read or any LLM call is paid for.
"""

from __future__ import annotations

import re

from ..errors import SpecError

_SAFE_PART = re.compile(r"[a-z_][a-z0-9_]*")
MAX_PART = 100   # one path segment; file systems allow 255 bytes, and ".spec.md" or "test_" is added
MAX_NAME = 200


def check_spec_name(name: str) -> str:
    """The name itself, or a `SpecError` (a ValueError, as pydantic validators need) saying why
    it cannot be a spec name."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError("component name is empty", spec=name)
    if len(name) > MAX_NAME or any(len(part) > MAX_PART for part in name.split("/")):
        raise SpecError(f"component name {name[:40]!r}... is too long ({len(name)} characters; at most "
                         f"{MAX_PART} per folder level and {MAX_NAME} in all)", spec=name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise SpecError(f"component name {name!r} is an absolute path; names are relative spec names", spec=name)
    parts = name.split("/")
    if ".." in parts or "." in parts:
        raise SpecError(f"component name {name!r} would escape the specs directory", spec=name)
    bad = [p for p in parts if not _SAFE_PART.fullmatch(p)]  # fullmatch: no trailing newline
    if bad:
        raise SpecError(
            f"component name {name!r} is not a safe spec name: use snake_case identifiers "
            "(lowercase letters, digits, underscores), optionally in '/' folders", spec=name)
    return name


def check_spec_names(names, what: str = "spec") -> list[str]:
    """Every name checked; one SpecError naming each bad one (with `what` it came from)."""
    names, problems = list(names), []
    for name in names:
        try:
            check_spec_name(name)
        except ValueError as exc:
            problems.append(str(exc).replace("component name", f"{what} name", 1))
    if problems:
        raise SpecError("; ".join(problems))
    return names
