"""Spechestra: spec-driven development on Prefect (spechestra-on-prefect).

Composer turns a plain-English request into an architecture and SpecSoloist specs; Conductor
builds them and performs workflow specs. Every step is a Prefect run, so the run history is
the execution trace. `SpecComposer`/`SpecConductor` keep code written for the old copy bundled
with specsoloist working.

Public names are imported on first use (as Prefect's own `__init__` does), so `spechestra --help`
and `spechestra doctor` never pay for importing Prefect.
"""

from importlib import import_module

from .install_check import guard_import as _guard_import

_guard_import()

__version__ = "0.1.0"

_LAZY = {
    "BaseComposer": "composer", "Composer": "composer", "SpecComposer": "composer",
    "BaseConductor": "conductor", "Conductor": "conductor", "SpecConductor": "conductor",
    "run_pipeline": "pipeline",
    **{name: "core.models" for name in (
        "Architecture", "BuildResult", "ComponentDef", "CompositionResult", "Outcome", "PerformResult",
        "PipelineResult", "ReviewDecision", "ReviewRequest", "StepResult", "VerifyResult")},
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'spechestra' has no attribute {name!r}")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
