"""A project as the Conductor sees it, in plain code: its specs, their dependency graph, what
stops a build (found before any LLM call), and the plan of per-spec jobs with their cache keys.

`BaseConductor` inherits this and adds only what runs on Prefect (build, perform, traces).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from importlib.metadata import version
from typing import Callable, Optional

import yaml
from specsoloist.config import SpecSoloistConfig
from specsoloist.parser import SpecParser
from specsoloist.resolver import DependencyResolver, MissingDependencyError

from ..errors import (
    MissingDependency,
    ProjectError,
    SpecError,
    UnsafeDependency,
    UsageError,
)
from . import options, prompts
from .graph import find_cycle, mermaid, topological_order
from .models import VerifyResult
from .names import check_spec_name, check_spec_names, collision
from .project import Layout, check_project_dir, find_specs_dir, load_arrangement
from .publishing import sha256
from .spec_build import SpecJob
from .spec_parser import CachingSpecParser
from .workflow import WorkflowPlan
from .workflow import plan as plan_steps

#: Bump when what a cached outcome holds changes shape (old cache entries then miss, never mislead).
CACHE_VERSION = "3"


@dataclass(frozen=True)
class BuildOptions:
    """Per-spec settings every job gets unless `make_job` says otherwise."""

    max_fixes: int = options.MAX_FIXES.default
    test_timeout: float = options.TEST_TIMEOUT.default
    retries: int = options.RETRIES.default
    retry_delay: float = options.RETRY_DELAY.default

    def __post_init__(self):
        for name in ("max_fixes", "test_timeout", "retries", "retry_delay"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0, got {getattr(self, name)!r}")


MakeJob = Callable[..., SpecJob]


class Project:
    """A project folder: specs (in `src/`, the arrangement's `specs_path`, or the folder itself),
    its arrangement, and `build/`."""

    def __init__(self, project_dir: str, config: Optional[SpecSoloistConfig] = None,
                 options: BuildOptions = BuildOptions()):
        self.project_dir = check_project_dir(project_dir)
        self.config = config if config is not None else SpecSoloistConfig.from_env(self.project_dir)
        self.options = options
        self.arrangement = load_arrangement(self.project_dir)
        self.specs_dir = find_specs_dir(self.project_dir, self.config, self.arrangement)
        self.build_dir = self.config.build_path
        self.parser = CachingSpecParser(self.specs_dir)
        self.resolver = DependencyResolver(self.parser)

    # --- the upstream Conductor's per-spec settings, as attributes ---------------------------
    # Read by `make_job` through these names, so a subclass may also set them as class attributes.
    max_fixes = property(lambda self: self.options.max_fixes, lambda self, v: self._set(max_fixes=v))
    test_timeout = property(lambda self: self.options.test_timeout, lambda self, v: self._set(test_timeout=v))
    retries = property(lambda self: self.options.retries, lambda self, v: self._set(retries=v))
    retry_delay = property(lambda self: self.options.retry_delay, lambda self, v: self._set(retry_delay=v))

    def _set(self, **change) -> None:
        self.options = replace(self.options, **change)

    # --- inspection ------------------------------------------------------------------------
    def spec_names(self) -> list[str]:
        return sorted(s[: -len(".spec.md")] for s in self.parser.list_specs())

    def dependencies(self, specs: Optional[list[str]] = None) -> dict[str, list[str]]:
        """Spec -> its dependencies, for `specs` plus everything they (transitively) need.

        Every name is checked before its file is read: a dependency like `../../x` never reads
        a file outside the specs folder (nor, later, sends one to an LLM)."""
        names = check_spec_names(specs, "--specs") if specs else self.spec_names()
        for name in names:
            if not self.parser.spec_exists(name):
                known = ", ".join(self.spec_names()) or "none"
                raise SpecError(f"no spec named {name!r} in {self.specs_dir} (specs here: {known})", spec=name)
        graph = self.resolver.build_graph(self._closure(names))
        return {n: list(graph.get_dependencies(n)) for n in sorted(graph.specs)}

    def _closure(self, names: list[str]) -> list[str]:
        seen: list[str] = []
        todo = [(n, n) for n in names]
        while todo:
            name, wanted_by = todo.pop()
            if name in seen:
                continue
            if name != wanted_by:
                try:
                    check_spec_name(name)
                except ValueError as exc:
                    raise UnsafeDependency(wanted_by, name, str(exc)) from None
            if not self.parser.spec_exists(name):
                raise MissingDependency(wanted_by, name)
            seen.append(name)
            todo.extend((d, name) for d in dependency_names(self.parser, name))
        return seen

    def problems(self, specs: Optional[list[str]] = None) -> dict[str, str]:
        """What stops each spec building, by spec name, found without calling any LLM. A problem of
        the project as a whole (no specs, an arrangement writing outside build/, an unknown name in
        `specs`) is raised as a `ProjectError`: it is not a spec's."""
        errors: dict[str, str] = {}
        if not os.path.isdir(self.project_dir):
            raise ProjectError(f"no project folder at {self.project_dir}: give the folder that holds the specs, "
                               "or create one with `spechestra compose REQUEST --project FOLDER`", path=self.project_dir)
        try:
            deps = self.dependencies(specs)
        except (MissingDependency, UnsafeDependency) as exc:
            return {exc.spec or "?": str(exc)}
        except MissingDependencyError as exc:  # SpecSoloist's resolver found one we did not
            return {str(getattr(exc, "spec", "") or "?"): str(exc)}
        if not deps:
            raise ProjectError(f"no specs in {self.specs_dir} (specs are read from src/, the arrangement's "
                               "specs_path, or the project folder itself)", path=self.specs_dir)
        self.layout().check_paths(deps)
        names_here = self.spec_names()  # one listing of the specs folder, not one per spec
        for name in deps:
            clash = collision(name, names_here) or self.too_large(name)
            if clash:  # before anything is paid for: a clash is no better after a build
                errors[name] = clash
                continue
            verdict = self.parser.validate_spec(name)
            if not verdict["valid"]:
                errors[name] = "invalid spec: " + "; ".join(verdict["errors"])
        cycle = find_cycle(deps)
        if cycle:
            for name in cycle[:-1]:
                errors.setdefault(name, "dependency cycle: " + " -> ".join(cycle))
        return errors

    def too_large(self, name: str) -> Optional[str]:
        """Why a spec file is too large to build (None: it is not), from its size on disk."""
        path = self.parser.get_spec_path(name)
        try:
            size = os.path.getsize(path)
        except OSError:
            return None  # a missing file is reported by the checks that read it
        if size <= options.MAX_SPEC_BYTES:
            return None
        return (f"{path} is {size / 2**20:.1f} MiB: specs over {options.MAX_SPEC_BYTES // 2**20} MiB are refused "
                f"(every prompt of its build would carry it whole, ~{size // 4:,} tokens); split it into smaller specs")

    def verify(self) -> VerifyResult:
        problems = self.problems() if self.spec_names() else {}  # a project-level problem raises
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
            raise SpecError("dependency cycle: " + " -> ".join(cycle), spec=cycle[0])
        return topological_order(deps, sorted(deps))

    def get_dependency_graph(self, specs: Optional[list[str]] = None):
        return self.resolver.build_graph(self._closure(list(specs)) if specs else None)

    def graph_mermaid(self, specs: Optional[list[str]] = None) -> str:
        return mermaid(self.dependencies(specs))

    def layout(self, arrangement=None) -> Layout:
        arr = load_arrangement(self.project_dir, arrangement) if arrangement is not None else self.arrangement
        arr_yaml = yaml_of(arr)
        return Layout(self.project_dir, self.specs_dir, self.build_dir, arr_yaml)

    def plan_workflow(self, workflow: str, inputs: dict) -> WorkflowPlan:
        """The checked step plan; ValueError names every problem, before any step runs."""
        return plan_steps(self.parser, self.layout(), workflow, inputs)

    # --- planning a build ---------------------------------------------------------------------
    def make_job(self, name: str, deps: list[str], layout: Layout, model: Optional[str], import_dirs,
                 llm_limit: Optional[str] = None) -> SpecJob:
        """One spec's job. Override to change per-spec settings (model, fixes, timeout)."""
        return SpecJob(name=name, layout=layout, deps=tuple(deps), model=model, max_fixes=self.max_fixes,
                       test_timeout=self.test_timeout, retries=self.retries, retry_delay=self.retry_delay,
                       llm_limit=llm_limit, import_dirs=import_dirs)

    def plan(self, specs=None, arrangement=None, model=None, llm_limit: Optional[str] = None,
             make_job: Optional[MakeJob] = None, llm: str = "") -> tuple[dict[str, SpecJob], list[str]]:
        """Every job of a build (dependencies first) with its cache key, and the order.

        `llm` names the effective provider and model: part of every key, so switching either
        rebuilds."""
        make_job = make_job or self.make_job
        layout = self.layout(arrangement)
        arr = layout.arrangement
        model = model or (arr.model if arr else None)
        deps = self.dependencies(specs)
        order = topological_order(deps, sorted(deps))
        import_dirs = tuple(sorted({os.path.dirname(layout.impl_path(n)) for n in order} - {""}))
        soloist = version("specsoloist")
        jobs: dict[str, SpecJob] = {}
        for name in order:
            job = make_job(name, deps[name], layout, model, import_dirs, llm_limit)
            text = self.parser.read_spec(name)
            key = cache_key(job, text, [jobs[d].cache_key for d in deps[name]], soloist, llm)
            jobs[name] = replace(job, cache_key=key, spec_sha256=sha256(text),
                                 network=self.wants_network(name))
        return jobs, order

    def wants_network(self, name: str) -> bool:
        """A spec whose tests genuinely need the network (an HTTP client) says `network: true` in its
        front matter; every other spec's generated code runs without one."""
        return self.parser.parse_spec(name).metadata.raw.get("network") is True


def yaml_of(arrangement) -> str:
    return yaml.safe_dump(arrangement.model_dump(mode="json"), sort_keys=True) if arrangement else ""


def cache_key(job: SpecJob, spec_text: str, dep_keys: list[str], specsoloist_version: str, llm: str = "") -> str:
    """Content key of one spec's build: its text, its dependencies' keys, and every setting
    that changes what gets generated (the provider and model among them)."""
    digest = hashlib.sha256()
    for part in (spec_text, *dep_keys, job.layout.arrangement_yaml, job.model or "", llm, prompts.PROMPT_VERSION,
                 specsoloist_version, str(job.max_fixes), CACHE_VERSION):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return f"spechestra-{job.name.replace('/', '.')}-{digest.hexdigest()[:32]}"


def dependency_names(parser: SpecParser, name: str) -> list[str]:
    """A spec's dependency names, as SpecSoloist's resolver reads them (frontmatter and steps)."""
    try:
        spec = parser.parse_spec(name)
    except UnicodeDecodeError as exc:
        path = parser.get_spec_path(name)
        raise SpecError(f"{path} is not a text file (not UTF-8: {exc.reason} at byte {exc.start}); fix it or move "
                        "it out of the specs folder", spec=name, path=path) from None
    found: list[str] = []
    for dep in spec.metadata.dependencies:
        raw = dep.get("from", "") if isinstance(dep, dict) else dep if isinstance(dep, str) else ""
        if raw:
            found.append(raw.replace(".spec.md", ""))
    for step in (spec.schema.steps if spec.schema and spec.schema.steps else []):
        found.append(step.spec)
    return list(dict.fromkeys(found))
