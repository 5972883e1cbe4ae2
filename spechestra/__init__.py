"""Spechestra: spec-driven development on Prefect (spechestra-on-prefect).

Composer turns a plain-English request into an architecture and SpecSoloist specs; Conductor
builds them and performs workflow specs. Every step is a Prefect run, so the run history is
the execution trace. `SpecComposer`/`SpecConductor` keep code written for the old copy bundled
with specsoloist working.
"""

from .install_check import guard_import as _guard_import

_guard_import()

from .composer import BaseComposer, Composer, SpecComposer  # noqa: E402
from .conductor import BaseConductor, Conductor, SpecConductor  # noqa: E402
from .models import (Architecture, BuildResult, ComponentDef, CompositionResult,  # noqa: E402
                     PerformResult, PipelineResult, ReviewDecision, ReviewRequest, StepResult, VerifyResult)

__version__ = "0.1.0"

__all__ = [
    "Architecture", "BaseComposer", "BaseConductor", "BuildResult", "ComponentDef", "Composer",
    "CompositionResult", "Conductor", "PerformResult", "PipelineResult", "ReviewDecision",
    "ReviewRequest", "SpecComposer", "SpecConductor", "StepResult", "VerifyResult",
]
