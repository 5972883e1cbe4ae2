"""Spec names that are safe to turn into file paths.

Names come from LLM answers, users' edits and spec files, and each one becomes a path
(`src/<name>.spec.md`, `build/<name>.py`), so anything that could escape its folder is refused
in one place, before anything is read or any LLM call is paid for.
"""

from __future__ import annotations

import re
import sys
from typing import Iterable, Optional

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


#: Modules a spec's code must not replace: a spec `json` would shadow the standard library for every
#: later test and step, `conftest` would become a pytest plugin for all specs, `typing` or `os`
#: break pytest's own start; and the tools every test run imports.
RESERVED_MODULES = frozenset(sys.stdlib_module_names) | {"conftest", "pytest", "_pytest", "pluggy", "iniconfig",
                                                         "spechestra", "specsoloist"}


def collision(name: str, others: Iterable[str]) -> Optional[str]:
    """Why spec `name` cannot live beside `others` (a project's spec names, from its files), or
    None. Names from files get the same check as names from an LLM, then the ones files allow:
    a module Python or pytest already owns, a test module's name, two names one letter-case apart."""
    try:
        check_spec_name(name)
    except SpecError as exc:
        return str(exc).replace("component name", "spec name", 1)
    parts = name.split("/")
    owned = next((p for p in (parts[-1], parts[0]) if p in RESERVED_MODULES), None)
    if owned:
        return (f"spec name {name!r} would replace Python's or pytest's own module {owned!r} for every test and "
                f"step: rename the spec (e.g. {owned}_tools)")
    if parts[-1] == "test" or parts[-1].startswith("test_"):
        return (f"spec name {name!r} is a test module's name (pytest collects test_*.py, and spec "
                f"{name.removeprefix('test_')!r}'s tests would be written to it): rename the spec")
    twin = next((o for o in others if o != name and o.casefold() == name.casefold()), None)
    if twin:
        return f"spec name {name!r} differs from spec {twin!r} only in letter case: rename one of them"
    namesake = next((o for o in others if o != name and o.split("/")[-1].casefold() == parts[-1].casefold()), None)
    if namesake:  # both folders are on every test's import path: `import y` would find either
        return (f"spec name {name!r} and spec {namesake!r} would both be the module {parts[-1]!r}: "
                "rename one of them")
    return None
