"""Every error Spechestra raises on purpose, in one tree.

`SpechestraError` is what a user can act on: its message is the one line the CLI prints, its
`exit_code` is what the CLI exits with, and it carries the facts as fields (`spec`, `setting`,
`path`...) so callers decide on fields, never on message text. Each class also derives from
the builtin that callers caught before this tree existed (`ConfigurationError` is a
`ValueError`, `ServerError` a `RuntimeError`...), so `except ValueError` keeps working.
Anything else that reaches the CLI is a bug in Spechestra: it prints the traceback and says so.

Standard library only: every layer imports this, the Prefect-free core included.
"""

from __future__ import annotations

from typing import Any, Optional


class SpechestraError(Exception):
    """A problem the user can act on; `str(error)` is the one line to show."""

    exit_code = 1

    def __init__(self, message: str, **fields: Any):
        super().__init__(message)
        for name, value in fields.items():
            setattr(self, name, value)

    def __reduce__(self):
        # Prefect pickles results and states (and Dask ships exceptions between processes):
        # rebuild from the message and the fields, whatever a subclass's __init__ takes.
        return (_restore, (type(self), self.args, dict(self.__dict__)))


def _restore(cls: type[SpechestraError], args: tuple, fields: dict) -> SpechestraError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(fields)
    return error


# --- configuration --------------------------------------------------------------------------
class ConfigurationError(SpechestraError, ValueError):
    """A setting (environment variable, Prefect Variable, price table, provider set-up) that
    cannot be used as given. `setting` names it."""

    setting: Optional[str]

    exit_code = 2

    def __init__(self, message: str, setting: Optional[str] = None, **fields: Any):
        super().__init__(message, setting=setting, **fields)


class SandboxUnavailable(ConfigurationError):
    """`SPECHESTRA_SANDBOX=required` where bubblewrap cannot contain generated code: nothing
    generated is run."""

    def __init__(self, message: str):
        super().__init__(message, setting="SPECHESTRA_SANDBOX")


class WarmRunnerUnavailable(SpechestraError):
    """The warm test runner cannot run this request (it did not start, it ended, or its sandbox
    no longer shows the build folder): the caller runs the tests in a new interpreter instead.
    Never reaches a user; the build's log says once that tests ran the slower way."""


class UsageError(SpechestraError, ValueError):
    """A call that cannot work as made: an empty request, a negative cap, a bad option value."""

    exit_code = 2


# --- projects and specs ----------------------------------------------------------------------
class ProjectError(SpechestraError, ValueError):
    """The project as a whole cannot be used: not a folder, no specs, an arrangement that writes
    outside build/. `path` is the file or folder at fault, when there is one."""

    path: Optional[str]

    def __init__(self, message: str, path: Optional[str] = None, **fields: Any):
        super().__init__(message, path=path, **fields)


class SpecError(ProjectError):
    """One spec (`spec`) cannot be used: a bad name, an unreadable file, an unknown spec."""

    spec: Optional[str]

    def __init__(self, message: str, spec: Optional[str] = None, **fields: Any):
        super().__init__(message, spec=spec, **fields)


class UnsafeDependency(SpecError):
    """A spec names a dependency that could not be a spec file inside the specs folder."""

    dependency: str

    def __init__(self, spec: str, dependency: str, why: str):
        super().__init__(f"spec {spec!r} depends on {dependency!r}, which is not a spec name: {why}",
                         spec=spec, dependency=dependency)


class MissingDependency(SpecError):
    """A spec depends on a spec that does not exist."""

    dependency: str

    def __init__(self, spec: str, dependency: str):
        super().__init__(f"spec {spec!r} depends on {dependency!r}, which does not exist", spec=spec,
                         dependency=dependency)


class WorkflowError(ProjectError):
    """A workflow cannot be performed as asked: an unknown step or output, a missing input."""

    workflow: Optional[str]

    def __init__(self, message: str, workflow: Optional[str] = None, **fields: Any):
        super().__init__(message, workflow=workflow, **fields)


class CannotWrite(SpechestraError, OSError):
    """A file Spechestra must write cannot be written: the disk is full, the folder read-only or
    not this user's. `path` names the file; the message says why and what to do (an errno alone,
    "[Errno 28] No space left on device", named neither)."""

    path: Optional[str]

    def __init__(self, message: str, path: Optional[str] = None, **fields: Any):
        super().__init__(message, path=path, **fields)


class ProjectBusy(SpechestraError, RuntimeError):
    """Another build (or compose) holds the project's lock for longer than this one may wait."""

    project_dir: str
    holder: str
    waited: float

    def __init__(self, project_dir: str, holder: str, waited: float):
        super().__init__(f"{project_dir} is in use by {holder}; waited {waited:g}s. Try again when it ends "
                         "(or wait longer: --lock-timeout or SPECHESTRA_LOCK_TIMEOUT).", project_dir=project_dir, holder=holder, waited=waited)


# --- the LLM -------------------------------------------------------------------------------
class ProviderError(SpechestraError, RuntimeError):
    """An LLM call failed. `status_code` and `transient` drive the retry decision; `retry_after`
    (seconds) is the server's own wait."""

    status_code: Optional[int]
    transient: bool
    retry_after: Optional[float]

    def __init__(self, message: str, status_code: Optional[int] = None, transient: bool = False,
                 retry_after: Optional[float] = None, **fields: Any):
        super().__init__(message, status_code=status_code, transient=transient, retry_after=retry_after, **fields)


class AnswerError(ProviderError, ValueError):
    """An LLM answer that cannot be used as asked (not the YAML or markdown the prompt wanted)."""


class LimitError(SpechestraError, RuntimeError):
    """No slot of the LLM concurrency limit (`limit`) could be taken: no call was made, so
    nothing is paid twice. Never a provider fault and never retried as one."""

    limit: Optional[str]
    transient = False

    def __init__(self, message: str, limit: Optional[str] = None):
        super().__init__(message, limit=limit)


class BudgetReached(SpechestraError, RuntimeError):
    """No call was made: the run's spending cap is reached (never retried)."""

    exit_code = 3
    transient = False


# --- Prefect: the server, reviews, runs -----------------------------------------------------
class ServerError(SpechestraError, RuntimeError):
    """The Prefect server could not be started or reached; `log` names its log when there is one."""

    log: Optional[str]

    def __init__(self, message: str, log: Optional[str] = None, **fields: Any):
        super().__init__(message, log=log, **fields)


class ReviewError(SpechestraError, RuntimeError):
    """A review or checkpoint cannot be asked or answered (`flow_run_id` names the run)."""

    flow_run_id: Optional[str]

    def __init__(self, message: str, flow_run_id: Optional[str] = None, **fields: Any):
        super().__init__(message, flow_run_id=flow_run_id, **fields)


class RunNotFound(SpechestraError, LookupError):
    """No flow run with that id (or no run of that workflow) in the run history."""

    flow_run_id: Optional[str]

    def __init__(self, message: str, flow_run_id: Optional[str] = None):
        super().__init__(message, flow_run_id=flow_run_id)


class RunFailed(SpechestraError, RuntimeError):
    """A run ended without success; `outcome` says how (failed, rejected, budget reached...)."""

    outcome: Any

    def __init__(self, message: str, outcome: Any = None):
        super().__init__(message, outcome=outcome)


class DeployError(SpechestraError, RuntimeError):
    """`prefect deploy` refused the deployments; `output` is what it printed."""

    output: str

    def __init__(self, message: str, output: str = ""):
        super().__init__(message, output=output)


class StepError(SpechestraError, RuntimeError):
    """A workflow step's own failure (exception, timeout, crash), with what it printed (`output`)."""

    output: str

    def __init__(self, message: str, output: str = ""):
        super().__init__(message, output=output)


class Interrupted(SpechestraError):
    """A stop was asked for (Ctrl-C, SIGTERM) and this work did not start: no LLM call, no test
    run. A spec it ends is Stopped with its paid answers kept; the command exits 130."""

    exit_code = 130


class EndedEarly(SpechestraError):
    """A run that failed or was cancelled on purpose, carrying what it produced (`result`).

    Prefect raises a failed or cancelled state's data when something reads it with raising on
    (the worker's engine does, at the end of every run); data that is not an exception makes
    that a TypeError. This one says why in its message and still hands the partial result on.
    """

    result: Any

    def __init__(self, message: str, result: Any = None):
        super().__init__(message, result=result)


__all__ = [name for name, value in dict(globals()).items()
           if isinstance(value, type) and issubclass(value, SpechestraError)]
