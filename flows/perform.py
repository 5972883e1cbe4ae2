"""Entrypoint for Prefect deployments: `flows/perform.py:perform` (run a built workflow spec)."""

from spechestra.orchestration.perform import perform

__all__ = ["perform"]
