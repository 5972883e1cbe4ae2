"""Entrypoint for Prefect deployments: `flows/build.py:build` (the Conductor on an existing project)."""

from spechestra.core.options import MAX_WORKERS
from spechestra.orchestration.build import build as _build
from spechestra.orchestration.runners import build_runner
from spechestra.settings import settings

# Read when a worker loads this entrypoint for a run: SPECHESTRA_TASK_RUNNER=dask on the worker
# builds specs on Dask (SPECHESTRA_BUILD_WORKERS at once, default: the build's max_workers).
build = _build.with_options(task_runner=build_runner(settings.build_workers or MAX_WORKERS.default))

__all__ = ["build"]

if __name__ == "__main__":
    import sys

    build(project_dir=sys.argv[1] if len(sys.argv) > 1 else ".")
