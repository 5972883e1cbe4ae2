"""Older import path, kept working: the flow now lives in `orchestration.pipeline`, and
`run_pipeline` in `spechestra.pipeline`."""

from .pipeline import compose_build_perform, run_pipeline

__all__ = ["compose_build_perform", "run_pipeline"]
