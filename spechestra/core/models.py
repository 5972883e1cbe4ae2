"""Spechestra's data model, in one place.

Pydantic models with field descriptions, because Prefect renders those descriptions in the
UI's parameter and review forms. The constructors also accept the positional arguments of the
dataclasses that specsoloist 0.3-0.7 bundled, so code written against that copy keeps working.
"""

from __future__ import annotations

import contextlib
from enum import Enum
from typing import Any, Optional

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from ..errors import SpecError
from .graph import find_cycle, topological_order
from .names import check_spec_name
from .text import first_line

#: Spec types SpecSoloist's parser understands.
SPEC_TYPES = (
    "function", "type", "bundle", "module", "workflow",
    "typedef", "class", "orchestrator", "reference",
)


class Outcome(str, Enum):
    """How a spec, a stage or a whole run ended. Code decides on these, never on message text;
    `orchestration.prefect.final_state` turns them into Prefect states."""

    COMPLETED = "completed"   # a stage or run that did everything it was asked
    BUILT = "built"           # a spec compiled and its tests passed
    CACHED = "cached"         # a spec served from the cache (unchanged)
    REFERENCE = "reference"   # a reference spec: nothing to compile
    FAILED = "failed"         # tests still failing, a provider error, a crashed step
    BLOCKED = "blocked"       # not attempted: a dependency did not build
    SKIPPED = "skipped"       # not attempted for a reason of its own (e.g. a budget)
    BUDGET_REACHED = "budget reached"  # a run that stopped starting work at its spending cap
    REJECTED = "rejected"     # a reviewer said no
    CANCELLED = "cancelled"   # nothing usable to go on with (e.g. an empty draft)
    STOPPED = "stopped"       # a checkpoint said stop, or Ctrl-C / SIGTERM did

    @property
    def ok(self) -> bool:
        return self in (Outcome.COMPLETED, Outcome.BUILT, Outcome.CACHED, Outcome.REFERENCE)

    def __str__(self) -> str:  # "built", not "Outcome.BUILT", in tables, logs and f-strings
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class ComponentDef(BaseModel):
    """One component of an architecture: becomes one `<name>.spec.md`."""

    name: str = Field(description="Spec name: snake_case, optionally in '/' folders (e.g. 'auth/tokens').")
    type: str = Field(default="function", description="Spec type: " + ", ".join(SPEC_TYPES) + ".")
    description: str = Field(default="", description="What this component does, in plain English.")
    inputs: dict[str, Any] = Field(default_factory=dict, description="Named inputs and their types.")
    outputs: dict[str, Any] = Field(default_factory=dict, description="Named outputs and their types.")
    dependencies: list[str] = Field(default_factory=list, description="Names of components this one uses.")

    def __init__(self, name: str = "", type: str = "function", description: str = "",
                 inputs: Optional[dict] = None, outputs: Optional[dict] = None,
                 dependencies: Optional[list] = None, **extra: Any):
        with _in_words("component"):
            super().__init__(name=name, type=type, description=description, inputs=inputs or {},
                             outputs=outputs or {}, dependencies=dependencies or [], **extra)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_spec_name(value)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in SPEC_TYPES:
            raise ValueError(f"unknown component type {value!r}; expected one of {', '.join(SPEC_TYPES)}")
        return value

    @field_validator("inputs", "outputs", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("dependencies", mode="before")
    @classmethod
    def _dependency_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        # SpecSoloist frontmatter allows {name:, from:} dependency entries.
        return [str(d.get("from") or d.get("name") or "").replace(".spec.md", "") if isinstance(d, dict) else d
                for d in value]


class Architecture(BaseModel):
    """Components and their dependencies; validated when built.

    `build_order` is always computed (a topological order that follows the given order where
    it can), never trusted from the LLM. Dependencies on specs that already exist in the
    project are allowed when `from_yaml(..., known=[...])` names them.
    """

    components: list[ComponentDef] = Field(default_factory=list, description="The components to write specs for.")
    dependencies: dict[str, list[str]] = Field(
        default_factory=dict, description="Component name -> names it depends on (merged with each component's list).")
    build_order: list[str] = Field(default_factory=list, description="Dependencies first; computed on validation.")
    description: str = Field(default="", description="The architecture in a sentence or two.")
    existing: list[str] = Field(default_factory=list, exclude=True, repr=False,
                                description="Specs already in the project, which components may depend on.")

    def __init__(self, components: Optional[list] = None, dependencies: Optional[dict] = None,
                 build_order: Optional[list] = None, description: str = "", **extra: Any):
        with _in_words("architecture"):
            super().__init__(components=components or [], dependencies=dependencies or {},
                             build_order=build_order or [], description=description or "", **extra)

    @model_validator(mode="after")
    def _check_graph(self) -> "Architecture":
        names = [c.name for c in self.components]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate component name(s): {', '.join(duplicates)}")
        for owner in self.dependencies:
            if owner not in names:
                raise ValueError(f"dependencies lists {owner!r}, which is not a component")
        for comp in self.components:
            merged = list(dict.fromkeys(comp.dependencies + list(self.dependencies.get(comp.name, []))))
            comp.dependencies = merged
            if merged or comp.name in self.dependencies:
                self.dependencies[comp.name] = merged
        known = set(self.existing)
        for comp in self.components:
            for dep in comp.dependencies:
                if dep == comp.name:
                    raise ValueError(f"component {comp.name!r} depends on itself")
                if dep not in names and dep not in known:
                    raise ValueError(f"component {comp.name!r} depends on unknown component {dep!r}")
        internal = {c.name: [d for d in c.dependencies if d in names] for c in self.components}
        cycle = find_cycle(internal)
        if cycle:
            raise ValueError("dependency cycle: " + " -> ".join(cycle))
        self.build_order = topological_order(internal, preferred=list(self.build_order) + names)
        return self

    def component(self, name: str) -> ComponentDef:
        for comp in self.components:
            if comp.name == name:
                return comp
        raise KeyError(name)

    def to_yaml(self) -> str:
        data = {
            "description": self.description,
            "components": [c.model_dump() for c in self.components],
            "dependencies": self.dependencies,
            "build_order": self.build_order,
        }
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, yaml_str: str, known: Optional[list[str]] = None) -> "Architecture":
        """Parse SpecSoloist's architecture YAML; one clear `SpecError` (a ValueError) on anything
        malformed or invalid, naming each problem."""
        try:
            data = yaml.safe_load(yaml_str)
        except yaml.YAMLError as exc:
            raise SpecError(f"architecture YAML is malformed: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise SpecError(f"architecture YAML must be a mapping, got {type(data).__name__}")
        components = data.get("components") or []
        if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
            raise SpecError("architecture YAML: 'components' must be a list of mappings")
        return cls(components=components, dependencies=data.get("dependencies") or {},
                   build_order=data.get("build_order") or [], description=data.get("description") or "",
                   existing=list(known or ()))


@contextlib.contextmanager
def _in_words(what: str):
    """Pydantic's errors (several lines, a docs URL each) as one `SpecError` line naming each
    problem: names come from users and models, and a name error is theirs to fix."""
    try:
        yield
    except ValidationError as exc:
        raise SpecError(f"invalid {what}: " + "; ".join(error_in_words(e) for e in exc.errors())) from None


def error_in_words(error: Any) -> str:
    """One pydantic error in words: where, and the validator's own message (no docs URL)."""
    where = ".".join(str(p) for p in error.get("loc", ()))
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if where and message.startswith("invalid component: "):  # a component's own error, inside an architecture
        return f"{where}.{message.removeprefix('invalid component: ')}"
    return f"{where}: {message}" if where else message


class CompositionResult(BaseModel):
    """What `Composer.compose` hands back."""

    architecture: Architecture = Field(description="The architecture that was (or would have been) written.")
    spec_paths: list[str] = Field(default_factory=list, description="Spec files created by this composition.")
    ready_for_build: bool = Field(default=False, description="True when specs exist, all valid, and were approved.")
    cancelled: bool = Field(default=False, description="True when review rejected it or nothing usable was drafted.")
    message: str = Field(default="", description="Why it was cancelled or not ready, in one line.")
    skipped: list[str] = Field(default_factory=list, description="Components whose spec already existed.")
    failed: dict[str, str] = Field(default_factory=dict, description="Component -> why its spec was not written.")
    flow_run_id: Optional[str] = Field(default=None, description="The Prefect flow run this ran in.")
    outcome: Outcome = Field(default=Outcome.COMPLETED,
                             description="completed, rejected (by a reviewer) or cancelled (nothing usable drafted).")

    def __init__(self, architecture: Optional[Architecture] = None, spec_paths: Optional[list] = None,
                 ready_for_build: bool = False, cancelled: bool = False, **extra: Any):
        super().__init__(architecture=architecture if architecture is not None else Architecture(),
                         spec_paths=spec_paths or [], ready_for_build=ready_for_build,
                         cancelled=cancelled, **extra)


class GeneratedSpecs(list):
    """The created spec paths (a plain list, as upstream returns), plus what was skipped or failed."""

    def __init__(self, created=(), skipped=(), failed=None):
        super().__init__(created)
        self.skipped: list[str] = list(skipped)
        self.failed: dict[str, str] = dict(failed or {})


class ReviewDecision(BaseModel):
    """A reviewer's answer: the same shape whether it came from the UI, the CLI or a callback."""

    approve: bool = Field(description="True: go on. False: reject (nothing is written or built).")
    comment: Optional[str] = Field(default=None, description="Optional note, kept in the run's logs.")
    architecture_yaml: Optional[str] = Field(
        default=None, description="Optional edited architecture (YAML). When given it replaces the draft.")


class ReviewRequest(BaseModel):
    """What a reviewer is asked to look at."""

    stage: str = Field(description="'architecture' (before specs are written), 'specs' (after), or 'checkpoint'.")
    checkpoint: Optional[str] = Field(default=None, description="For a checkpoint: the step it stops before.")
    architecture: Architecture
    spec_paths: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    summary: str = Field(default="", description="Markdown summary shown in the Prefect UI.")


# --- Conductor ------------------------------------------------------------------------------
class SpecOutcome(BaseModel):
    """What building one spec produced. Cached as the task's result, so it carries the files."""

    name: str
    status: Outcome = Field(description="built, cached, reference, failed or blocked.")
    attempts: int = Field(default=0, description="Test runs made (1 + fixes).")
    llm_calls: int = Field(default=0, description="Provider calls made (retries included).")
    retries: int = Field(default=0, description="Provider calls retried after a transient fault.")
    reused: int = Field(default=0, description="Answers reused from an earlier attempt of this task.")
    input_tokens: int = Field(default=0, description="Prompt tokens this run's calls used.")
    output_tokens: int = Field(default=0, description="Response tokens this run's calls used.")
    tokens_estimated: bool = Field(default=False, description="True if a provider reported no usage (~4 chars/token).")
    cost_usd: Optional[float] = Field(default=None, description="Estimated cost from SPECHESTRA_PRICES; None if unpriced.")
    seconds: float = 0.0
    error: Optional[str] = None
    files: dict[str, str] = Field(default_factory=dict, description="Path relative to build/ -> content.")
    notes: list[str] = Field(default_factory=list, description="What this run noticed, e.g. files edited by hand and kept.")
    started: float = 0.0
    ended: float = 0.0


class BuildResult(BaseModel):
    """Upstream's BuildResult fields, plus what Spechestra adds."""

    success: bool
    specs_compiled: list[str] = Field(default_factory=list, description="Compiled to code and tests by this run.")
    specs_reference: list[str] = Field(default_factory=list, description="Reference specs: documentation for "
                                       "the specs that use them, nothing to compile.")
    specs_skipped: list[str] = Field(default_factory=list, description="Unchanged: served from cache.")
    specs_failed: list[str] = Field(default_factory=list)
    specs_blocked: list[str] = Field(default_factory=list, description="Not attempted: a dependency failed.")
    specs_budget_skipped: list[str] = Field(default_factory=list, description="Not built: the run's budget was reached.")
    specs_stopped: list[str] = Field(default_factory=list, description="Not finished: a stop (Ctrl-C, SIGTERM) "
                                     "ended them; the answers they had paid for are kept for the next build.")
    budget_reached: Optional[str] = Field(default=None, description="Why the run stopped starting work, if it did.")
    problem: Optional[str] = Field(default=None, description="Why the build could not start at all (the project as "
                                   "a whole: no specs, a refused arrangement, a busy project, a bad setting).")
    setup: list[str] = Field(default_factory=list, description="What preparing the arrangement's environment did.")
    contained: str = Field(default="", description="How generated code ran in this build (the sandbox, the "
                           "network), e.g. 'bubblewrap, no network'; specs that asked for the network are named.")
    build_order: list[str] = Field(default_factory=list)
    errors: dict[str, str] = Field(default_factory=dict)
    duration: float = 0.0
    flow_run_id: Optional[str] = None
    details: dict[str, SpecOutcome] = Field(default_factory=dict)
    llm_calls_made: int = Field(default=0, description="Provider calls this build started, counted in every "
                                "process it used: the specs' own counts plus attempts that never finished "
                                "(a lost cluster worker, a killed task).")

    def counts(self) -> str:
        """The build in one line of counts, the same in the terminal, the UI and the pipeline."""
        reference = f", {len(self.specs_reference)} reference" if self.specs_reference else ""
        skipped = f", {len(self.specs_budget_skipped)} skipped (budget)" if self.specs_budget_skipped else ""
        stopped = f", {len(self.specs_stopped)} stopped" if self.specs_stopped else ""
        return (f"{len(self.specs_compiled)} compiled{reference}, {len(self.specs_skipped)} cached, "
                f"{len(self.specs_failed)} failed, {len(self.specs_blocked)} blocked{skipped}{stopped}")

    @property
    def outcome(self) -> Outcome:
        if self.success:
            return Outcome.COMPLETED
        if self.specs_stopped:  # what failed or was blocked beside them may be the stop's doing too
            return Outcome.STOPPED
        if self.budget_reached and not self.specs_failed and not self.specs_blocked:
            return Outcome.BUDGET_REACHED
        return Outcome.FAILED

    @property
    def message(self) -> str:
        if self.success:
            return ""
        if self.problem:
            return self.problem
        if self.specs_stopped:
            return (f"{first_line(self.errors.get(self.specs_stopped[0], '')) or 'stopped'}; "
                    f"{len(self.specs_stopped)} spec(s) not finished: {', '.join(self.specs_stopped)}")
        if self.budget_reached:
            return (f"{self.budget_reached}; {len(self.specs_budget_skipped)} spec(s) skipped: "
                    f"{', '.join(self.specs_budget_skipped)}")
        names = self.specs_failed + self.specs_blocked
        return f"{len(names)} spec(s) not built: {', '.join(names)}"


class VerifyResult(BaseModel):
    success: bool
    results: dict[str, dict] = Field(default_factory=dict)


# --- Perform ----------------------------------------------------------------------------------
class StepResult(BaseModel):
    """One workflow step, as upstream defines it."""

    name: str
    spec: str = Field(description="The spec whose compiled module ran.")
    inputs: dict = Field(default_factory=dict)
    outputs: dict = Field(default_factory=dict)
    success: bool = False
    error: Optional[str] = None
    duration: float = 0.0

    def __init__(self, name: Optional[str] = None, spec: Optional[str] = None, inputs: Optional[dict] = None,
                 outputs: Optional[dict] = None, success: bool = False, **extra: Any):
        super().__init__(name=name, spec=spec, inputs=inputs or {}, outputs=outputs or {}, success=success, **extra)


class PerformResult(BaseModel):
    """A whole workflow run, as upstream defines it, plus where its Prefect run history is."""

    success: bool
    workflow: str
    steps: list[StepResult] = Field(default_factory=list, description="Steps that ran, in declared order.")
    outputs: dict = Field(default_factory=dict, description="The last step's outputs.")
    declared_outputs: dict = Field(default_factory=dict, description="The workflow's declared outputs (its "
                                   "yaml:schema), from the step outputs of the same name, else one per step in order.")
    notes: list[str] = Field(default_factory=list, description="What the run noticed: declared outputs no step produced.")
    trace_path: str = Field(default="", description="JSON trace written under build/.spechestra/traces/.")
    duration: float = Field(default=0.0, description="Wall time, reviews at checkpoints included.")
    work_duration: float = Field(default=0.0, description="Time spent running, without waiting for reviews.")
    error: Optional[str] = Field(default=None, description="Why it stopped, if it did not succeed.")
    flow_run_id: Optional[str] = None
    trace: dict = Field(default_factory=dict, description="The trace, as read back from Prefect's run history.")
    outcome: Outcome = Field(default=Outcome.COMPLETED, description="completed, failed, or stopped at a checkpoint.")

    @property
    def message(self) -> str:
        return self.error or ""

    def __init__(self, success: Optional[bool] = None, workflow: Optional[str] = None,
                 steps: Optional[list] = None, outputs: Optional[dict] = None, **extra: Any):
        super().__init__(success=success, workflow=workflow, steps=steps or [], outputs=outputs or {}, **extra)


class PipelineResult(BaseModel):
    """`compose_build_perform`: each stage's result, and where it stopped."""

    stage: str = Field(description="The last stage reached: compose, build or perform.")
    success: bool
    message: str = ""
    composition: Optional[CompositionResult] = None
    build: Optional[BuildResult] = None
    perform: Optional[PerformResult] = None
    flow_run_id: Optional[str] = Field(default=None, description="The compose_build_perform flow run.")
    llm: dict = Field(default_factory=dict, description="LLM use across all stages (calls, approx tokens, seconds).")
    outcome: Outcome = Field(default=Outcome.COMPLETED, description="How the pipeline ended (rejected, failed, ...).")
