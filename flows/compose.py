"""Entrypoint for Prefect deployments: `flows/compose.py:compose`.

The flow itself lives in the package (`spechestra.orchestration.compose`) so the Python API and
deployments run the same code; this file only gives `prefect deploy` a path to point at.
"""

from spechestra.orchestration.compose import compose

__all__ = ["compose"]

if __name__ == "__main__":
    import sys

    compose(request=" ".join(sys.argv[1:]) or "A function that adds two numbers", auto_accept=True)
