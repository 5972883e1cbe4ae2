"""Where a flow's tasks run: threads, or a Dask or Ray cluster (local, or one you run).

Prefect's flow engine enters the task runner outside the part of a run it looks after: a runner
that could not start there (a Ray cluster that does not answer, or wants a token) ended the
command with an error but left its flow run `Running` for good. Each runner here keeps such an
error and raises it at its first `submit`, inside the run, which then ends `Failed` saying it
(naming the setting and what to check), and the command says it in one line.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Optional

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from ..errors import ConfigurationError
from ..settings import colour_wanted, export, settings

#: Ray's client waits 30 s and says only "ray client connection timeout" both for a wrong address
#: and for a cluster that wants a token: Ray turns token authentication on by default (local
#: clusters from 2.59, all from 2.61), and its client sends the token only with RAY_AUTH_MODE=token.
RAY_HINT = ("check the address (the head's Ray Client port, 10001 unless `ray start --ray-client-server-port` "
            "said otherwise) and, for a cluster with token authentication, set RAY_AUTH_MODE=token here with its "
            "token (RAY_AUTH_TOKEN, or the file `ray get-auth-token` reads)")
DASK_HINT = "check the scheduler's address and that this machine can reach it"


class _StartsInTheRun:
    """Mixed into a task runner (see the module docstring). Ray connects when the runner is
    entered, Dask at its first submit: either failure is said the same way, inside the run."""

    setting = ""  # the SPECHESTRA_TASK_RUNNER value it stands for
    hint = ""
    _failed: Optional[ConfigurationError] = None
    _submitted = False

    def __enter__(self):
        try:
            return super().__enter__()
        except Exception as exc:  # noqa: BLE001 - said in the run, at the first submit
            self._failed = self._cannot_start(exc)
            return self

    def submit(self, *args: Any, **kwargs: Any):
        if self._failed is not None:
            raise self._failed
        try:
            future = super().submit(*args, **kwargs)  # type: ignore[misc]
        except OSError as exc:  # a connection that never worked (Dask's first submit connects)
            if self._submitted:
                raise
            raise self._cannot_start(exc) from exc
        self._submitted = True
        return future

    def __exit__(self, *exc_info: Any):
        if self._failed is None:
            return super().__exit__(*exc_info)  # type: ignore[misc]
        # Never started: only Prefect's own bookkeeping. Ray's exit asks Ray for its runtime
        # context, which with no connection starts a local Ray (30 s, ~15 lines of its noise)
        # only to shut it down.
        return TaskRunner.__exit__(self, *exc_info)  # type: ignore[arg-type]

    def _cannot_start(self, exc: BaseException) -> ConfigurationError:
        error = ConfigurationError(
            f"SPECHESTRA_TASK_RUNNER={self.setting}: the task runner could not start "
            f"({type(exc).__name__}: {' '.join(str(exc).split())}){'; ' + self.hint if self.hint else ''}",
            setting="SPECHESTRA_TASK_RUNNER")
        error.__cause__ = exc
        return error


@functools.cache
def _starting_in_the_run(base: type, setting: str, hint: str) -> type:
    return type(base.__name__, (_StartsInTheRun, base), {"__module__": __name__, "setting": setting, "hint": hint})


def thread_runner(max_workers: int) -> ThreadPoolTaskRunner:
    return ThreadPoolTaskRunner(max_workers=max(1, max_workers))


def build_runner(max_workers: int, kind: Optional[str] = None):
    """The task runner for a build: threads, Dask (`pip install 'spechestra[dask]'`) or Ray
    (`pip install 'spechestra[ray]'`).

    With Dask or Ray each spec's task is pickled to a worker process, which chooses its provider
    by setting (`SPECHESTRA_PROVIDER`) and talks to the same Prefect API.
    """
    kind = (kind or settings.task_runner).strip() or "threads"
    if kind == "threads":
        return thread_runner(max_workers)
    if kind == "dask" or kind.startswith("dask:"):
        return _dask(kind, max_workers)
    if kind == "ray" or kind.startswith("ray://"):
        return _ray(kind, max_workers)
    raise ConfigurationError(f"SPECHESTRA_TASK_RUNNER={kind!r}: use threads, dask, dask:tcp://HOST:PORT, ray or "
                             "ray://HOST:PORT", setting="SPECHESTRA_TASK_RUNNER")


def _dask(kind: str, max_workers: int):
    # Dask's own INFO lines (~40 per build: scheduler, nannies, connections) and its noise at
    # shutdown are not the build's news; read by `distributed` at import, here and in the
    # worker processes it starts. A cluster the build starts and ends itself says nothing below
    # critical: under load a worker's heartbeat can meet the closing scheduler, which Dask logs
    # as an ERROR with a traceback (a task that fails is reported by Prefect either way). A
    # user's own DASK_LOGGING__DISTRIBUTED wins.
    export("DASK_LOGGING__DISTRIBUTED", "error" if kind.startswith("dask:") else "critical", only_if_unset=True)
    try:  # optional dependency (spechestra[dask]): imported only when asked for
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ConfigurationError("SPECHESTRA_TASK_RUNNER=dask needs prefect-dask: pip install 'spechestra[dask]'",
                                 setting="SPECHESTRA_TASK_RUNNER") from None
    runner = _starting_in_the_run(DaskTaskRunner, kind, DASK_HINT if kind.startswith("dask:") else "")
    if kind.startswith("dask:"):
        return runner(address=kind.split(":", 1)[1])
    _quiet_resource_tracker()
    # No dashboard; the scheduler's HTTP server (health, metrics) still starts, on Dask's fixed
    # 8787 unless told otherwise: on a free loopback port, so two builds never contend for it.
    return runner(cluster_kwargs={**local_dask_shape(max_workers), "processes": True, "dashboard_address": None,
                                  "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"},
                                  "preload": ["spechestra.processes.dask_worker"]})


def local_dask_shape(max_workers: int) -> dict[str, int]:
    """A local cluster's worker processes and threads: processes up to the cores (Dask's CPU_COUNT,
    which heeds CPU affinity and cgroup quotas), threads for the rest of `max_workers` (the build
    itself never runs more specs than that at once). A spec's own CPU work is its test runs, each a
    process of its own; a worker process per spec beyond the cores bought only its start, ~2.8 s of
    CPU importing Prefect: an 8-worker build on 2 cores took 25 core-s and made its first call 8 s in."""
    from dask.system import CPU_COUNT
    wanted = max(1, max_workers)
    processes = max(1, min(wanted, CPU_COUNT))
    return {"n_workers": processes, "threads_per_worker": -(-wanted // processes)}


#: multiprocessing's resource tracker (a process of its own, started with this process's -W options)
#: warns "There appear to be 12 leaked semaphore objects to clean up at shutdown" when the command
#: ends without closing its local cluster (the watchdog's exit once the server is gone), and then
#: cleans them up as it should: a line after the command's last one that asks nothing of anyone.
TRACKER_QUIET = "ignore::UserWarning:multiprocessing.resource_tracker"


def _quiet_resource_tracker() -> None:
    """Before the local cluster starts the tracker (Dask's worker processes get the option too,
    where it changes nothing else)."""
    if TRACKER_QUIET not in sys.warnoptions:
        sys.warnoptions.append(TRACKER_QUIET)


def _ray(kind: str, max_workers: int):
    try:  # optional dependency (spechestra[ray])
        from prefect_ray import RayTaskRunner
    except ImportError:
        raise ConfigurationError("SPECHESTRA_TASK_RUNNER=ray needs prefect-ray: pip install 'spechestra[ray]'",
                                 setting="SPECHESTRA_TASK_RUNNER") from None
    # Ray colours the prefix of every line a worker logs (its spec's log) unless told not to,
    # also into a file or a pipe; read by Ray where it prints them, in this process (a cluster's
    # client prints them as the cluster colours them: RAY_COLOR_PREFIX=0 in its environment).
    if not colour_wanted():
        export("RAY_COLOR_PREFIX", "0", only_if_unset=True)
    # Ray's own lines (started, no SIGTERM handler off the main thread, token auth on) are not the
    # build's news: errors only, as a local Dask's.
    quiet = {"logging_level": logging.ERROR}
    if kind == "ray":  # a local Ray started for this build, one CPU per spec at once
        runner = _starting_in_the_run(RayTaskRunner, kind, "")
        return runner(init_kwargs={"num_cpus": max(1, max_workers), "include_dashboard": False, **quiet})
    return _starting_in_the_run(RayTaskRunner, kind, RAY_HINT)(address=kind, init_kwargs=quiet)
