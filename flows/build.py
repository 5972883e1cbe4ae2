"""Entrypoint for Prefect deployments: `flows/build.py:build` (the Conductor on an existing project)."""

from spechestra.conductor_flow import build

__all__ = ["build"]

if __name__ == "__main__":
    import sys

    build(project_dir=sys.argv[1] if len(sys.argv) > 1 else ".")
