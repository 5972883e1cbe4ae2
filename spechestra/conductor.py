"""The Conductor: builds a project's specs and performs its workflow specs, on Prefect.

A thin facade over the plain `Project` (inspection and planning, inherited) and the `build` and
`perform` flows: it hands its provider and its `make_job` hook to them through the runtime and
calls them. Plans are checked before any flow run exists: invalid specs, missing dependencies
and cycles are reported by name, and no LLM is called.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from specsoloist.config import SpecSoloistConfig
from specsoloist.providers import LLMProvider

from .core.models import BuildResult, PerformResult, StepResult, VerifyResult
from .core.options import MAX_WORKERS, STEP_TIMEOUT
from .core.planning import BuildOptions, Project
from .core.precheck import check_build
from .core.reviews import continue_at_checkpoints
from .facade import Facade
from .orchestration import runtime
from .orchestration.build import build_in_run, log_refusal
from .orchestration.history import get_traces
from .orchestration.perform import perform_in_run
from .orchestration.prefect import local_api
from .orchestration.watched import watched

__all__ = ["BaseConductor", "BuildResult", "Conductor", "PerformResult", "SpecConductor", "StepResult",
           "VerifyResult"]


class BaseConductor(Facade, Project):
    """Extension point: override `make_job` to change per-spec settings (model, fixes, timeout)."""

    def __init__(self, project_dir: str, config: Optional[SpecSoloistConfig] = None,
                 provider: Optional[LLMProvider] = None, *,
                 max_fixes: Optional[int] = None, test_timeout: Optional[float] = None,
                 retries: Optional[int] = None, retry_delay: Optional[float] = None):
        given: dict[str, Any] = {k: v for k, v in (("max_fixes", max_fixes), ("test_timeout", test_timeout),
                                   ("retries", retries), ("retry_delay", retry_delay)) if v is not None}
        Project.__init__(self, project_dir, config, BuildOptions(**given))
        self._init_facade(provider)

    # --- build -------------------------------------------------------------------------------
    def build(self, specs: Optional[list[str]] = None, parallel: bool = True, incremental: bool = True,
              max_workers: int = MAX_WORKERS.default, arrangement=None, model: Optional[str] = None,
              lock_timeout: Optional[float] = None, progress: Optional[Callable[[str, str], None]] = None,
              max_llm_calls: Optional[int] = None, max_tokens: Optional[int] = None) -> BuildResult:
        """One task run per spec built (the `build` flow); cached by content, so unchanged specs cost
        nothing (they are reused together in one `reuse-cached-specs` task run).

        One build per project at a time: another build waits up to `lock_timeout` seconds
        (default `SPECHESTRA_LOCK_TIMEOUT`, 600) and then returns a failed result whose `problem` says
        so. A project that cannot be built at all (no specs, say) returns its `problem` the same way. `progress(spec, phase)`
        is told what each spec is doing as the build goes (compiling, testing, fixing 1/2, built...).
        `max_llm_calls` / `max_tokens` cap this run's spending: no call starts past them, specs not
        built end Skipped, and a later build with a larger cap resumes without paying twice."""
        refused = check_build(self, specs)
        if refused is not None:  # before any flow run exists, and before any LLM call
            log_refusal(refused)
            return refused
        with self._runtime(arrangement=arrangement, lock_timeout=lock_timeout, progress=progress):
            result = watched(lambda: build_in_run(self, specs, incremental, max_workers if parallel else 1, model,
                                                  max_llm_calls=max_llm_calls, max_tokens=max_tokens))
        self.last_flow_run_id = result.flow_run_id
        return result

    # --- perform -----------------------------------------------------------------------------
    def perform(self, workflow: str, inputs: Optional[dict] = None, checkpoint_callback: Optional[Callable] = None,
                auto_approve: bool = False, step_timeout: Optional[float] = None,
                progress: Optional[Callable[[str, str], None]] = None,
                pause_at_checkpoints: bool = False) -> PerformResult:
        """Run a workflow spec's steps (one task run each); returns the steps and the trace.

        A checkpoint asks `checkpoint_callback` when one is given; without one it does not stop a
        Python caller (the log says so), unless `pause_at_checkpoints` pauses the run for an answer
        in the UI or the API. The CLI's terminal review and deployment runs always pause."""
        inputs = dict(inputs or {})
        self.plan_workflow(workflow, inputs)  # fail fast, before a flow run exists
        if checkpoint_callback is None and not pause_at_checkpoints and runtime.current().board is None:
            checkpoint_callback = continue_at_checkpoints
        with self._runtime(checkpoint_callback=checkpoint_callback, progress=progress):
            result = watched(lambda: perform_in_run(self.project_dir, workflow, inputs, auto_approve,
                                                    step_timeout or STEP_TIMEOUT.default))
        self.last_flow_run_id = result.flow_run_id
        return result

    def build_and_perform(self, workflow: str, inputs: Optional[dict] = None, checkpoint_callback=None,
                          **options) -> tuple[BuildResult, PerformResult]:
        built = self.build()
        if not built.success:
            why = "build failed: " + ", ".join(built.specs_failed + built.specs_blocked)
            return built, PerformResult(success=False, workflow=workflow, error=why)
        return built, self.perform(workflow, inputs, checkpoint_callback, **options)

    def get_trace(self, workflow: str) -> list[dict]:
        """Past runs of `workflow`, newest first, read from Prefect's run history."""
        with local_api():
            return get_traces(workflow)

    def _runtime(self, **fields):
        return self._handover(make_job=self.make_job, **fields)


class Conductor(BaseConductor):
    """Builds with SpecSoloist's compiler through the configured provider."""


SpecConductor = Conductor
