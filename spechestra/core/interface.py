"""A workflow's declared interface (its `yaml:schema` block), held to what a caller gives it.

SpecSoloist's workflows declare their inputs with types and bounds (`n: integer, minimum 0,
maximum 20`); performing one with `n=25` or `n="x"` used to run every step on it. Each given
input is checked against its declaration before any step runs, and a required one that is
missing is named. Only what is declared is checked: an input the schema does not mention passes.
A step's own spec is held the same way: a workflow input (or a literal) handed to a step argument
must fit what the step's spec declares for it.
"""

from __future__ import annotations

import re
from typing import Any

#: Declared type -> what Python values count as it (bool is never a number here).
TYPES: dict[str, tuple[type, ...]] = {"integer": (int,), "number": (int, float), "string": (str,),
                                      "boolean": (bool,), "array": (list, tuple), "object": (dict,)}


def input_problems(declared: dict, given: dict) -> list[str]:
    """One line per input that does not fit its declaration, naming what was expected."""
    problems = []
    for name, param in (declared or {}).items():
        if name not in given:
            if getattr(param, "required", False) and getattr(param, "default", None) is None:
                problems.append(f"input {name!r} is required ({_expected(param)})")
            continue
        why = _misfit(param, given[name])
        if why:
            problems.append(f"input {name!r}={given[name]!r} {why}")
    return problems


def argument_problem(declared: dict, arg: str, value: Any) -> str:
    """Why `value` does not fit the argument `arg` a step's own spec declares ("" when it does, or
    when the spec does not declare it): a workflow that declares nothing about an input still
    never hands a step what that step's spec rules out."""
    param = (declared or {}).get(arg)
    return _misfit(param, value) if param is not None else ""


def _misfit(param: Any, value: Any) -> str:
    kind = getattr(param, "type", None)
    allowed = TYPES.get(kind or "")
    if allowed is not None and (not isinstance(value, allowed) or (kind != "boolean" and isinstance(value, bool))):
        return f"is not {_article(kind or '')} {kind}"
    enum = getattr(param, "enum", None)
    if enum and value not in enum:
        return f"is not one of {', '.join(map(repr, enum))}"
    low, high = getattr(param, "minimum", None), getattr(param, "maximum", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if low is not None and value < low:
            return f"is below the minimum {low}"
        if high is not None and value > high:
            return f"is above the maximum {high}"
    if isinstance(value, str):
        shortest, longest = getattr(param, "minLength", None), getattr(param, "maxLength", None)
        if shortest is not None and len(value) < shortest:
            return f"is shorter than {shortest} characters"
        if longest is not None and len(value) > longest:
            return f"is longer than {longest} characters"
        pattern = getattr(param, "pattern", None)
        if pattern and re.fullmatch(pattern, value) is None:
            return f"does not match {pattern!r}"
    return ""


def _expected(param: Any) -> str:
    parts = [getattr(param, "type", None) or "any value"]
    low, high = getattr(param, "minimum", None), getattr(param, "maximum", None)
    if low is not None or high is not None:
        parts.append(f"from {low if low is not None else '-inf'} to {high if high is not None else 'inf'}")
    return " ".join(parts)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def declared_outputs(declared: list[str], steps: list) -> tuple[dict, list[str]]:
    """The workflow's declared outputs from its steps' results, and a note for each it cannot
    find. A step output of the same name wins (the last step that has it); else, when the
    workflow declares one output per step and each step returned one value (SpecSoloist's
    math_workflow: factorial_result, is_prime_result), they are taken in step order; else one
    declared output is the last step's only value (the demo's `top`, returned as `words`)."""
    if not declared:
        return {}, []
    found: dict = {}
    for step in steps:
        for key, value in (step.outputs or {}).items():
            if key in declared:
                found[key] = value
    missing = [name for name in declared if name not in found]
    singles = [step for step in steps if step.success and len(step.outputs or {}) == 1]
    if missing and not found and len(declared) == len(steps) == len(singles):
        return {name: next(iter(step.outputs.values())) for name, step in zip(declared, steps)}, []
    if missing and not found and len(declared) == 1 and steps and steps[-1] in singles:
        return {declared[0]: next(iter(steps[-1].outputs.values()))}, []
    return found, [f"declared output {name!r} was not produced by any step" for name in missing]
