"""What stops a build before anything is paid for, checked the same way by the Python API (before
any flow run exists) and by the `build` flow (for deployments and the UI, which skip the API).

A problem of the project as a whole (no specs, an arrangement that writes outside build/, an
unknown name asked for, a bad price table) is the result's `problem`; a spec's own problem
(invalid, a missing or unsafe dependency, a cycle) is under its name in `errors` and
`specs_failed`. Nothing is a pseudo-spec name.
"""

from __future__ import annotations

from typing import Optional

from ..errors import SpechestraError
from . import pricing
from .models import BuildResult
from .planning import Project


def check_build(project: Project, specs: Optional[list[str]] = None) -> Optional[BuildResult]:
    """None when the build can start; else the failed result that says why."""
    try:
        pricing.price_table()  # a bad table fails the build once, by name, not every spec
        problems = project.problems(specs)
    except SpechestraError as exc:
        return BuildResult(success=False, problem=str(exc))
    if problems:
        return BuildResult(success=False, specs_failed=sorted(problems), errors=problems)
    return None
