"""A workflow spec as a plan of steps: validated as a whole before any step runs.

Every reference a step makes (`inputs.x`, `step.outputs.y`) is checked up front, so a typo in the
last step fails the perform at once instead of after the expensive steps have run. The step graph
comes from those references: steps that do not refer to each other may run at the same time.
No Prefect here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from specsoloist.parser import SpecParser

from ..errors import WorkflowError
from .interface import argument_problem, input_problems
from .project import Layout

WORKFLOW_TYPES = ("workflow", "orchestrator")


@dataclass(frozen=True)
class Ref:
    """Where one step input comes from: the workflow's inputs, another step's outputs, or a literal."""

    kind: str  # "input" | "step" | "literal"
    source: str = ""  # input name, or step name
    key: str = ""  # output key for "step"
    value: Any = None  # for "literal"


@dataclass(frozen=True)
class Step:
    name: str
    spec: str
    checkpoint: bool
    inputs: dict[str, Ref]
    after: tuple[str, ...]  # steps whose outputs this step reads
    module_path: str  # absolute path of the compiled module
    function: str  # fallback entry-point name (the spec's own name)
    network: bool = False  # its spec asks for the network (`network: true`); else it runs without
    declared_env: tuple[str, ...] = ()  # the arrangement's env_vars, passed to the step when set


@dataclass
class WorkflowPlan:
    workflow: str
    steps: list[Step] = field(default_factory=list)
    import_dirs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()  # the workflow's declared outputs (its yaml:schema), in order


def parse_ref(raw: Any, step_names: list[str]) -> Ref:
    """`inputs.x` and `<step>.outputs.y` are references; everything else passes through as is."""
    if not isinstance(raw, str) or "." not in raw:
        return Ref("literal", value=raw)
    head, _, rest = raw.partition(".")
    if head == "inputs" and rest:
        return Ref("input", source=rest)
    middle, _, key = rest.partition(".")
    if middle == "outputs" and key:
        return Ref("step", source=head, key=key)  # the step's existence is checked by plan()
    return Ref("literal", value=raw)


def plan(parser: SpecParser, layout: Layout, workflow: str, inputs: dict) -> WorkflowPlan:
    """Check the workflow spec, its references and its compiled modules; raise WorkflowError naming
    the first problem (and every other one found alongside it)."""
    if not parser.spec_exists(workflow):
        raise WorkflowError(f"no spec named {workflow!r} in {parser.src_dir}", workflow=workflow)
    spec = parser.parse_spec(workflow)
    kind = spec.metadata.type
    if kind not in WORKFLOW_TYPES:
        raise WorkflowError(f"{workflow!r} is a {kind!r} spec; only workflow or orchestrator specs can be performed",
                            workflow=workflow)
    raw_steps = spec.schema.steps if spec.schema and spec.schema.steps else []
    if not raw_steps:
        raise WorkflowError(f"workflow {workflow!r} has no steps (expected a yaml:steps block)", workflow=workflow)

    problems: list[str] = input_problems(spec.schema.inputs if spec.schema else {}, inputs)
    names = [s.name for s in raw_steps]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"duplicate step names: {', '.join(dupes)}")
    declared_outputs: dict[str, set[str]] = {}
    steps: list[Step] = []
    for position, raw in enumerate(raw_steps):
        where = f"step {raw.name!r}"
        if not parser.spec_exists(raw.spec):
            problems.append(f"{where}: spec {raw.spec!r} does not exist")
            continue
        step_spec = parser.parse_spec(raw.spec)
        outs = set(step_spec.schema.outputs) if step_spec.schema and step_spec.schema.outputs else set()
        declared_outputs[raw.name] = outs
        refs: dict[str, Ref] = {}
        takes = step_spec.schema.inputs if step_spec.schema and step_spec.schema.inputs else {}
        for arg, source in raw.inputs.items():
            ref = parse_ref(source, names)
            if ref.kind == "input" and ref.source not in inputs:
                problems.append(f"{where}: input {arg!r} needs workflow input {ref.source!r}, "
                                f"which was not given (given: {', '.join(sorted(inputs)) or 'none'})")
            elif ref.kind != "step":  # a workflow input or a literal: known now, so checked now
                value = inputs[ref.source] if ref.kind == "input" else ref.value
                why = argument_problem(takes, arg, value)
                if why:
                    given = f"workflow input {ref.source}={value!r}" if ref.kind == "input" else f"{value!r}"
                    problems.append(f"{where}: input {arg!r} gets {given}, which {why} "
                                    f"(spec {raw.spec!r} declares {arg}: {getattr(takes[arg], 'type', None)})")
            if ref.kind == "step":
                if ref.source not in names:
                    problems.append(f"{where}: input {arg!r} refers to unknown step {ref.source!r}")
                elif names.index(ref.source) >= position:
                    problems.append(f"{where}: input {arg!r} refers to step {ref.source!r}, "
                                    "which does not come before it")
                elif declared_outputs.get(ref.source) and ref.key not in declared_outputs[ref.source]:
                    problems.append(f"{where}: input {arg!r} refers to {ref.source}.outputs.{ref.key}, but "
                                    f"{ref.source}'s spec declares only: {', '.join(sorted(declared_outputs[ref.source]))}")
            refs[arg] = ref
        module = layout.absolute(layout.impl_path(raw.spec))
        if step_spec.metadata.type in ("reference", "typedef"):
            problems.append(f"{where}: spec {raw.spec!r} is a {step_spec.metadata.type} spec and has nothing to run")
        elif not module.exists():
            problems.append(f"{where}: compiled module for {raw.spec!r} not found at {module} (build first)")
        after = tuple(dict.fromkeys(r.source for r in refs.values() if r.kind == "step"))
        steps.append(Step(raw.name, raw.spec, bool(raw.checkpoint), refs, after, str(module),
                          raw.spec.split("/")[-1], step_spec.metadata.raw.get("network") is True,
                          layout.declared_env()))
    if problems:
        raise WorkflowError(f"workflow {workflow!r} cannot run: " + "; ".join(problems), workflow=workflow,
                            problems=problems)
    dirs = {os.path.dirname(s.module_path) for s in steps} | {layout.build_dir}
    return WorkflowPlan(workflow, steps, tuple(sorted(dirs)), tuple(spec.schema.outputs or {}) if spec.schema else ())


def resolve(step: Step, inputs: dict, outputs: dict[str, dict]) -> dict:
    """The step's actual arguments, from the workflow inputs and earlier steps' outputs."""
    values = {}
    for arg, ref in step.inputs.items():
        if ref.kind == "input":
            values[arg] = inputs[ref.source]
        elif ref.kind == "step":
            produced = outputs[ref.source]
            if ref.key not in produced:
                raise KeyError(f"step {ref.source!r} produced no output {ref.key!r} "
                               f"(it produced: {', '.join(sorted(produced)) or 'nothing'})")
            values[arg] = produced[ref.key]
        else:
            values[arg] = ref.value
    return values


def find_workflow(parser: SpecParser, names: list[str]) -> Optional[str]:
    """The project's only workflow spec, or None if it has none or several."""
    found = [n for n in names if parser.parse_spec(n).metadata.type in WORKFLOW_TYPES]
    return found[0] if len(found) == 1 else None
