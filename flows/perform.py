"""Entrypoint for Prefect deployments: `flows/perform.py:perform` (run a built workflow spec)."""

from spechestra.perform_flow import perform

__all__ = ["perform"]
