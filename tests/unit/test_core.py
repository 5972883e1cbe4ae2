"""Plain code, no Prefect server: graphs, workflow references, fix targets, cache keys, input
parsing, YAML extraction, trace trees, running one step."""

import json
import re
import sys

import pytest

import kit
from spechestra.cli.app import parse_inputs
from spechestra.core.composing import extract_yaml, strip_fences
from spechestra.core.graph import find_cycle, mermaid, topological_order
from spechestra.core.models import Outcome, PerformResult, StepResult
from spechestra.core.planning import BuildOptions, Project, cache_key
from spechestra.core.spec_build import fix_target
from spechestra.core.tracing import document, format_tree
from spechestra.core.workflow import Ref, parse_ref, resolve
from spechestra.errors import StepError
from spechestra.processes.step_runner import run_step


def test_graph_order_cycle_and_mermaid():
    deps = {"c": ["b"], "b": ["a"], "a": [], "d": []}
    assert topological_order(deps, ["d", "a", "b", "c"]) == ["d", "a", "b", "c"]
    assert find_cycle(deps) is None
    assert find_cycle({"x": ["y"], "y": ["x"]}) in (["x", "y", "x"], ["y", "x", "y"])
    text = mermaid({"a": [], "b": ["a"]}, {"a": "failed"})
    assert "n0 --> n1" in text and "class n0 failed" in text


def test_workflow_references_and_resolution():
    assert parse_ref("inputs.n", []) == Ref("input", source="n")
    assert parse_ref("first.outputs.result", ["first"]) == Ref("step", source="first", key="result")
    assert parse_ref("3.5", []).kind == "literal" and parse_ref(7, []).value == 7
    step = type("S", (), {"inputs": {"a": Ref("input", source="n"), "b": Ref("step", source="s", key="k"),
                                     "c": Ref("literal", value="x")}})
    assert resolve(step, {"n": 1}, {"s": {"k": 2}}) == {"a": 1, "b": 2, "c": "x"}
    with pytest.raises(KeyError, match="produced no output 'k'"):
        resolve(step, {"n": 1}, {"s": {"other": 2}})


@pytest.mark.parametrize("named, expected", [
    ("src/a.py", "src/a.py"), ("build/src/a.py", "src/a.py"), ("`tests/test_a.py`", "tests/test_a.py"),
    ("a.py", "src/a.py"), ("/etc/passwd", None), ("../a.py", None), ("src/b.py", None), ("", None),
])
def test_fix_target_maps_only_own_files(named, expected):
    assert fix_target(named, "src/a.py", "tests/test_a.py") == expected


def test_cache_key_changes_with_every_input(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.spec.md").write_text(kit.spec_markdown("a"))
    project = Project(str(tmp_path))
    job = project.make_job("a", [], project.layout(), None, ())
    base = cache_key(job, "spec", ["dep"], "0.7")
    assert base == cache_key(job, "spec", ["dep"], "0.7")  # stable
    from dataclasses import replace
    variants = [cache_key(job, "spec2", ["dep"], "0.7"), cache_key(job, "spec", ["dep2"], "0.7"),
                cache_key(job, "spec", ["dep"], "0.8"), cache_key(replace(job, model="m"), "spec", ["dep"], "0.7"),
                cache_key(replace(job, max_fixes=5), "spec", ["dep"], "0.7")]
    assert len({base, *variants}) == 6
    jobs, order = project.plan()
    assert order == ["a"] and jobs["a"].cache_key.startswith("spechestra-a-")


def test_build_options_are_validated_and_reach_jobs(tmp_path):
    with pytest.raises(ValueError, match="max_fixes must be >= 0"):
        BuildOptions(max_fixes=-1)
    project = Project(str(tmp_path), options=BuildOptions(max_fixes=5, test_timeout=9))
    project.retries = 7  # the upstream attribute still works
    job = project.make_job("a", [], project.layout(), None, ())
    assert (job.max_fixes, job.test_timeout, job.retries) == (5, 9, 7)


def test_parse_inputs_reads_json_or_text():
    assert parse_inputs(["n=5", "flag=true", "text=hello world", "xs=[1, 2]", "eq=a=b"]) == {
        "n": 5, "flag": True, "text": "hello world", "xs": [1, 2], "eq": "a=b"}


def test_yaml_extraction_and_fences():
    assert extract_yaml("Here:\n```yaml\na: 1\n```\nthanks") == "a: 1\n"
    assert extract_yaml("a: 1") == "a: 1"
    with pytest.raises(ValueError, match="not valid YAML"):
        extract_yaml("```yaml\na: [1\n```")
    assert strip_fences("```markdown\n# Title\n```") == "# Title"


def test_trace_document_and_tree():
    steps = [StepResult("one", "a", {"x": 1}, {"y": 2}, success=True, duration=0.5),
             StepResult("two", "b", {"y": 2}, success=False, error="ValueError: bad\nmore")]
    result = PerformResult(success=False, workflow="w", steps=steps, outputs={"y": 2}, error="step 'two' failed",
                           outcome=Outcome.FAILED, flow_run_id="1234")
    trace = document(result, {"x": 1}, "brave-fox", [
        {"name": s.name, "spec": s.spec, "state": "Completed" if s.success else "Failed", "duration": s.duration,
         "inputs": s.inputs, "outputs": s.outputs, "error": s.error} for s in steps])
    assert trace["state"] == "Failed" and json.loads(json.dumps(trace))["outputs"] == {"y": 2}
    tree = format_tree(trace).splitlines()
    assert tree[0].startswith("perform w  |  flow run brave-fox (1234)  |  Failed")
    assert tree[2] == "├── one (a)  Completed  0.50s" and tree[4] == '│   out: {"y": 2}'
    assert "└── two (b)  Failed" in tree[5] and tree[7].strip() == "error: ValueError: bad"
    assert tree[-1] == "stopped: step 'two' failed"


def test_run_step_calls_the_entry_point_in_a_fresh_interpreter(tmp_path):
    module = tmp_path / "double.py"
    module.write_text("import sys\n\ndef run(value):\n    print('working')\n    return {'result': value * 2, 'exe': sys.executable}\n")
    done = run_step(str(module), "double", {"value": 21}, (str(tmp_path),), timeout=60)
    assert done.outputs["result"] == 42 and done.outputs["exe"] == sys.executable and "working" in done.output
    module.write_text("def double(v):\n    raise ValueError('no ' + str(v))\n")
    with pytest.raises(StepError, match="ValueError: no 3"):
        run_step(str(module), "double", {"v": 3}, (str(tmp_path),), timeout=60)


def test_outcomes_read_as_plain_words():
    assert f"{Outcome.BUILT}" == "built" and str(Outcome.BLOCKED) == "blocked"
    assert Outcome.CACHED.ok and not Outcome.REJECTED.ok


def test_a_missing_project_folder_is_one_line_and_nothing_is_created(tmp_path):
    """Before: `[Errno 2] No such file or directory` (a raw FileNotFoundError from the planner)."""
    from specsoloist.config import SpecSoloistConfig

    from spechestra.core.precheck import check_build
    missing = tmp_path / "projects" / "default"
    refused = check_build(Project(str(missing), SpecSoloistConfig(root_dir=str(missing))))
    assert refused is not None and refused.problem.startswith(f"no project folder at {missing}: ")
    assert not (tmp_path / "projects").exists()


@pytest.mark.parametrize("given, says", [
    ({"n": 25}, "input 'n'=25 is above the maximum 20"),
    ({"n": -1}, "input 'n'=-1 is below the minimum 0"),
    ({"n": "x"}, "input 'n'='x' is not an integer"),
    ({"n": True}, "input 'n'=True is not an integer"),
    ({}, "input 'n' is required (integer from 0 to 20)"),
])
def test_a_workflow_s_declared_inputs_are_held_to(tmp_path, given, says):
    """SpecSoloist's math_workflow declares `n: integer, minimum 0, maximum 20`; before, `n=25` ran."""
    from spechestra.core.interface import input_problems
    from spechestra.core.workflow import plan
    from spechestra.errors import WorkflowError
    conductor = kit.workflow_project(tmp_path, "- name: one\n  spec: good\n  inputs:\n    value: inputs.value\n",
                                     {"good": "def run(value):\n    return {'result': value}\n"})
    spec = tmp_path / "src" / "flow.spec.md"
    spec.write_text(spec.read_text().replace("inputs:\n  value:\n    type: integer\n",
                                             "inputs:\n  n:\n    type: integer\n    minimum: 0\n    maximum: 20\n"
                                             "  value:\n    type: integer\n    required: false\n", 1))
    with pytest.raises(WorkflowError, match=re.escape(says)):
        plan(conductor.parser, conductor.layout(), "flow", dict(given, value=1))
    assert input_problems(conductor.parser.parse_spec("flow").schema.inputs, {"n": 20, "value": 1}) == []


def test_declared_outputs_resolve_by_the_documented_rules():
    """The demo's word_report declares `top` and its last step returns `words`: before, the note
    "declared output 'top' was not produced by any step" on every demo run."""
    from types import SimpleNamespace as Step

    from spechestra.core.interface import declared_outputs
    same = [Step(outputs={"x": 1}, success=True), Step(outputs={"top": 2, "y": 3}, success=True)]
    assert declared_outputs(["top"], same) == ({"top": 2}, [])
    per_step = [Step(outputs={"result": 120}, success=True), Step(outputs={"result": False}, success=True)]
    assert declared_outputs(["factorial_result", "is_prime_result"], per_step) == (
        {"factorial_result": 120, "is_prime_result": False}, [])
    last = [Step(outputs={"text": "a"}, success=True), Step(outputs={"words": [["a", 1]]}, success=True)]
    assert declared_outputs(["top"], last) == ({"top": [["a", 1]]}, [])
    two_values = [Step(outputs={"a": 1, "b": 2}, success=True)]
    assert declared_outputs(["top"], two_values) == ({}, ["declared output 'top' was not produced by any step"])
