"""Data model: upstream-compatible constructors, YAML round trip, validation by name."""

import pytest

from spechestra.core.models import Architecture, ComponentDef, CompositionResult
from spechestra.errors import SpecError


def test_upstream_names_are_exported():
    import spechestra
    import spechestra.composer as composer_module
    assert spechestra.SpecComposer is spechestra.Composer
    for name in ("Architecture", "ComponentDef", "CompositionResult"):
        assert getattr(composer_module, name) is getattr(spechestra, name)


def test_upstream_constructors_positional_and_keyword():
    add = ComponentDef("add", "function", "adds numbers")
    calc = ComponentDef(name="calc", type="module", description="calculator", dependencies=["add"])
    arch = Architecture([add, calc], {"calc": ["add"]}, ["add", "calc"])
    assert arch.build_order == ["add", "calc"]
    assert arch.dependencies == {"calc": ["add"]}
    empty = CompositionResult(Architecture([], {}, []), [], False, cancelled=True)
    assert empty.cancelled and not empty.ready_for_build
    assert add.inputs == {} and add.outputs == {} and add.dependencies == []


def test_yaml_round_trip():
    arch = Architecture(components=[
        ComponentDef("parse", "function", "parse it", inputs={"text": "string"}, outputs={"rows": "array"}),
        ComponentDef("api/report", "module", "report", dependencies=["parse"]),
    ], description="two parts")
    again = Architecture.from_yaml(arch.to_yaml())
    assert again == arch
    assert again.build_order == ["parse", "api/report"]


def test_from_yaml_accepts_specsoloist_architecture_yaml():
    text = """
description: calc
components:
  - name: calc
    type: module
    description: calculator
    dependencies: [add]
  - name: add
    type: function
    description: adds
    dependencies: []
build_order: [calc, add]
"""
    arch = Architecture.from_yaml(text)
    # The LLM's order put a dependent first; the computed order never does.
    assert arch.build_order == ["add", "calc"]


@pytest.mark.parametrize("bad, fragment", [
    ("../evil", "escape the specs directory"),
    ("/tmp/x", "absolute path"),
    ("Has Space", "not a safe spec name"),
    ("", "empty"),
])
def test_unsafe_names_are_refused(bad, fragment):
    with pytest.raises(SpecError, match=fragment):
        ComponentDef(bad, "function", "x")


def test_cycle_is_reported_by_name():
    with pytest.raises(SpecError, match=r"dependency cycle: a -> b -> c -> a|dependency cycle: b -> c -> a -> b"):
        Architecture([ComponentDef("a", dependencies=["b"]), ComponentDef("b", dependencies=["c"]),
                      ComponentDef("c", dependencies=["a"])])


def test_duplicate_and_unknown_are_reported_by_name():
    with pytest.raises(SpecError, match="duplicate component name.*twice"):
        Architecture([ComponentDef("twice"), ComponentDef("twice")])
    with pytest.raises(SpecError, match="'a' depends on unknown component 'ghost'"):
        Architecture([ComponentDef("a", dependencies=["ghost"])])


def test_known_existing_specs_are_valid_dependencies():
    arch = Architecture.from_yaml("components: [{name: a, dependencies: [old]}]", known=["old"])
    assert arch.components[0].dependencies == ["old"] and arch.build_order == ["a"]


@pytest.mark.parametrize("text, fragment", [
    ("components: [unclosed", "malformed"),
    ("- just\n- a list", "must be a mapping"),
    ("components: [1, 2]", "list of mappings"),
])
def test_malformed_yaml_is_a_clear_error(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        Architecture.from_yaml(text)


def test_step_and_perform_results_keep_upstream_defaults():
    from spechestra import PerformResult, StepResult
    step = StepResult(name="s1", spec="f", inputs={}, outputs={}, success=True)
    assert step.error is None and step.duration == 0.0
    assert StepResult("s2", "g").success is False  # positional, as upstream's dataclass allowed
    done = PerformResult(success=True, workflow="w", steps=[], outputs={"result": 42})
    assert done.outputs == {"result": 42} and done.trace_path == "" and done.duration == 0.0


def test_a_name_error_is_one_line_without_pydantic_s_docs_link():
    """Issue 19, before: pydantic's text, several lines and a docs URL per problem."""
    from spechestra.core.reviews import normalize
    from spechestra.errors import UsageError
    with pytest.raises(SpecError) as nested:
        Architecture(components=[{"name": "../x", "type": "function"}])
    said = str(nested.value)
    assert said == "invalid architecture: components.0.name: component name '../x' would escape the specs directory"
    with pytest.raises(UsageError) as answer:
        normalize({"decision": "maybe"})
    for error in (nested.value, answer.value):
        assert "\n" not in str(error) and "pydantic.dev" not in str(error), str(error)
