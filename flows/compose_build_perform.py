"""Entrypoint for Prefect deployments: `flows/compose_build_perform.py:compose_build_perform`.

The whole pipeline: compose -> build -> perform -> trace, as three subflows; reviews pause this run.
"""

from spechestra.orchestration.pipeline import compose_build_perform

__all__ = ["compose_build_perform"]

if __name__ == "__main__":
    import sys

    compose_build_perform(request=" ".join(sys.argv[1:]) or "Describe what to build", project_dir=".")
