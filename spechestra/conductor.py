"""The Conductor: builds a project's specs on Prefect (and, next, performs workflow specs).

Plans are checked before any LLM call: invalid specs, missing dependencies and cycles are
reported by name. The build itself is the `build` flow (`conductor_flow`), one task per spec.
"""

from __future__ import annotations

import os
from importlib.metadata import version as _version
from typing import Optional

from specsoloist.config import SpecSoloistConfig
from specsoloist.parser import SpecParser
from specsoloist.resolver import DependencyResolver, MissingDependencyError

from .build_flow import cache_key, register_provider, run_build
from .graph import find_cycle, mermaid, topological_order
from .models import BuildResult, PerformResult, StepResult, VerifyResult
from . import settings
from .prefect_api import active_limit, in_flow_run, logger
from .project import Layout, find_specs_dir, load_arrangement
from .providers import ProjectProvider
from .spec_build import SpecJob
from .workflow import WorkflowPlan
from .workflow import plan as plan_workflow

__all__ = ["BaseConductor", "BuildResult", "Conductor", "PerformResult", "SpecConductor", "StepResult",
           "VerifyResult"]


class BaseConductor(ProjectProvider):
    """Extension point: override `make_job` to change per-spec settings (model, fixes, timeout)."""

    max_fixes = 2          # fix attempts after the first test run
    test_timeout = 120.0   # seconds one spec's generated tests may run
    retries = 3            # retries of one provider call after a transient fault
    retry_delay = 1.0      # first backoff in seconds (doubles, +/-50% jitter)

    def __init__(self, project_dir: str, config: Optional[SpecSoloistConfig] = None, provider=None, *,
                 max_fixes: Optional[int] = None, test_timeout: Optional[float] = None,
                 retries: Optional[int] = None, retry_delay: Optional[float] = None):
        self._init_project(project_dir, config, provider)
        for name, value in (("max_fixes", max_fixes), ("test_timeout", test_timeout),
                            ("retries", retries), ("retry_delay", retry_delay)):
            if value is not None:
                if value < 0:
                    raise ValueError(f"{name} must be >= 0, got {value!r}")
                setattr(self, name, value)
        self.arrangement = load_arrangement(self.project_dir)
        self.specs_dir = find_specs_dir(self.project_dir, self.config, self.arrangement)
        self.build_dir = self.config.build_path
        self.parser = SpecParser(self.specs_dir)
        self.resolver = DependencyResolver(self.parser)

    @property
    def provider_ref(self) -> str:
        return f"conductor-{id(self)}"

    # --- inspection ------------------------------------------------------------------------
    def spec_names(self) -> list[str]:
        return sorted(s[: -len(".spec.md")] for s in self.parser.list_specs())

    def dependencies(self, specs: Optional[list[str]] = None) -> dict[str, list[str]]:
        """Spec -> its dependencies, for `specs` plus everything they (transitively) need."""
        names = list(specs) if specs else self.spec_names()
        graph = self.resolver.build_graph(self._closure(names))
        return {n: list(graph.get_dependencies(n)) for n in sorted(graph.specs)}

    def _closure(self, names: list[str]) -> list[str]:
        seen: list[str] = []
        todo = [(n, n) for n in names]
        while todo:
            name, wanted_by = todo.pop()
            if name in seen:
                continue
            if not self.parser.spec_exists(name):
                raise MissingDependencyError(wanted_by, name)
            seen.append(name)
            todo.extend((d, name) for d in _deps_of(self.parser, name))
        return seen

    def problems(self, specs: Optional[list[str]] = None) -> dict[str, str]:
        """Everything that stops a build, by spec name, found without calling any LLM."""
        errors: dict[str, str] = {}
        try:
            deps = self.dependencies(specs)
        except MissingDependencyError as exc:
            return {getattr(exc, "spec", "?"): str(exc)}
        except FileNotFoundError as exc:
            return {"?": str(exc)}
        for name in deps:
            verdict = self.parser.validate_spec(name)
            if not verdict["valid"]:
                errors[name] = "invalid spec: " + "; ".join(verdict["errors"])
        cycle = find_cycle(deps)
        if cycle:
            for name in cycle[:-1]:
                errors.setdefault(name, "dependency cycle: " + " -> ".join(cycle))
        return errors

    def verify(self) -> VerifyResult:
        problems = self.problems() if self.spec_names() else {}
        results = {n: {"status": "invalid" if n in problems else "valid", "errors": [problems[n]] if n in problems else []}
                   for n in self.spec_names()}
        for name, why in problems.items():
            results.setdefault(name, {"status": "invalid", "errors": [why]})
        return VerifyResult(success=not problems, results=results)

    def get_build_order(self, specs: Optional[list[str]] = None) -> list[str]:
        if not self.spec_names():
            return []
        deps = self.dependencies(specs)
        cycle = find_cycle(deps)
        if cycle:
            raise ValueError("dependency cycle: " + " -> ".join(cycle))
        return topological_order(deps, sorted(deps))

    def get_dependency_graph(self, specs: Optional[list[str]] = None):
        return self.resolver.build_graph(self._closure(list(specs)) if specs else None)

    def graph_mermaid(self, specs: Optional[list[str]] = None) -> str:
        return mermaid(self.dependencies(specs))

    # --- build -------------------------------------------------------------------------------
    def make_job(self, name: str, deps: list[str], layout: Layout, model: Optional[str], import_dirs,
                 llm_limit: Optional[str] = None) -> SpecJob:
        return SpecJob(name=name, layout=layout, deps=tuple(deps), model=model, max_fixes=self.max_fixes,
                       test_timeout=self.test_timeout, retries=self.retries, retry_delay=self.retry_delay,
                       llm_limit=llm_limit, provider_ref=self.provider_ref, import_dirs=import_dirs)

    def plan(self, specs=None, arrangement=None, model=None) -> tuple[dict[str, SpecJob], list[str]]:
        layout = self.layout(arrangement)
        arr = layout.arrangement
        model = model or (arr.model if arr else None)
        deps = self.dependencies(specs)
        order = topological_order(deps, sorted(deps))
        import_dirs = tuple(sorted({os.path.dirname(layout.impl_path(n)) for n in order} - {""}))
        soloist = _version("specsoloist")
        limit = active_limit(settings.llm_limit_name()) if in_flow_run() else None
        jobs: dict[str, SpecJob] = {}
        for name in order:
            job = self.make_job(name, deps[name], layout, model, import_dirs, limit)
            key = cache_key(job, self.parser.read_spec(name), [jobs[d].cache_key for d in deps[name]], soloist)
            jobs[name] = SpecJob(**{**job.__dict__, "cache_key": key})
        return jobs, order

    def build(self, specs: Optional[list[str]] = None, parallel: bool = True, incremental: bool = True,
              max_workers: int = 4, arrangement=None, model: Optional[str] = None) -> BuildResult:
        problems = self.problems(specs)
        if problems:
            for name, why in problems.items():
                logger().error("%s: %s", name, why)
            return BuildResult(success=False, specs_failed=sorted(problems), errors=problems)
        if not in_flow_run():
            from .conductor_flow import run_conductor
            return run_conductor(self, specs, parallel, incremental, max_workers, arrangement, model)
        return self._build_here(specs, parallel, incremental, max_workers, arrangement, model)

    def _build_here(self, specs, parallel, incremental, max_workers, arrangement, model) -> BuildResult:
        from .prefect_api import current_flow_run_id
        self.last_flow_run_id = current_flow_run_id()
        jobs, order = self.plan(specs, arrangement, model)
        register_provider(self.provider_ref, self.provider)
        return run_build(jobs, order, max_workers if parallel else 1, refresh=not incremental)


    # --- perform -----------------------------------------------------------------------------
    def layout(self, arrangement=None) -> Layout:
        import yaml
        arr = load_arrangement(self.project_dir, arrangement) if arrangement is not None else self.arrangement
        arr_yaml = yaml.safe_dump(arr.model_dump(mode="json"), sort_keys=True) if arr else ""
        return Layout(self.project_dir, self.specs_dir, self.build_dir, arr_yaml)

    def plan_workflow(self, workflow: str, inputs: dict) -> WorkflowPlan:
        """The checked step plan; ValueError names every problem, before any step runs."""
        return plan_workflow(self.parser, self.layout(), workflow, inputs)

    def perform(self, workflow: str, inputs: Optional[dict] = None, checkpoint_callback=None,
                auto_approve: bool = False, step_timeout: Optional[float] = None) -> PerformResult:
        """Run a workflow spec's steps (one task run each); returns the steps and the trace."""
        from .perform_flow import STEP_TIMEOUT, run_perform
        inputs = dict(inputs or {})
        self.plan_workflow(workflow, inputs)  # fail fast, before a flow run exists
        result = run_perform(self, workflow, inputs, checkpoint_callback, auto_approve, step_timeout or STEP_TIMEOUT)
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
        from .trace import get_traces
        return get_traces(workflow)


def _deps_of(parser: SpecParser, name: str) -> list[str]:
    """A spec's dependency names, as SpecSoloist's resolver reads them (frontmatter and steps)."""
    spec = parser.parse_spec(name)
    found: list[str] = []
    for dep in spec.metadata.dependencies:
        raw = dep.get("from", "") if isinstance(dep, dict) else dep if isinstance(dep, str) else ""
        if raw:
            found.append(raw.replace(".spec.md", ""))
    for step in (spec.schema.steps if spec.schema and spec.schema.steps else []):
        found.append(step.spec)
    return list(dict.fromkeys(found))


class Conductor(BaseConductor):
    """Builds with SpecSoloist's compiler through the configured provider."""


SpecConductor = Conductor
