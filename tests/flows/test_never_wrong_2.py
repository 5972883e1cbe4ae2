"""Issue 19 (never wrong, never lost, round 2): hostile results and edits mid-build. Each test
failed on the code before its fix (said in its docstring). Real builds and perform runs."""

from pathlib import Path

import pytest

import kit
from kit import build as kit_build
from kit import workflow_project
from kit.mounts import in_own_mounts, needs_unshare
from spechestra import Conductor
from spechestra.providers import ScriptedProvider

pytestmark = pytest.mark.timeout(300)


def _spec(root: Path, name: str, deps=(), variant: str = "variant-1") -> None:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / f"{name}.spec.md").write_text(
        kit.spec_markdown(name, deps=deps, description=f"Spec {name} marker-{name} {variant}."))


def _editing_provider(root: Path, calls: list):
    """Answers a and b; while answering a's code it edits b's spec (a user saving mid-build).
    b's code carries the variant its prompt named, so what was built from which text shows."""
    def code(prompt: str) -> str:
        name = kit_build.spec_of_code_prompt(prompt, {"marker-a": "a", "marker-b": "b"})
        calls.append(name)
        if name == "a" and "variant-1" in (root / "src" / "b.spec.md").read_text():
            _spec(root, "b", deps=["a"], variant="variant-2")
        variant = "variant-2" if "variant-2" in prompt else "variant-1"
        return f"def {name}(value):\n    return value  # {variant}\n"

    return ScriptedProvider([
        ("You are an expert QA Engineer", lambda p: (lambda m: f"from {m} import {m}\n\ndef test_it():\n"
                                                               f"    assert {m}(3) == 3\n")(
            kit_build.module_of_test_prompt(p))),
        ("Your task is to implement", code),
    ])


def test_a_spec_edited_mid_build_is_never_cached_under_the_key_of_its_old_text(tmp_path):
    """Before: b was built from its edited text but cached under the key of the text the build
    planned from; after the edit was undone, the next build served variant-2 code with 0 calls."""
    _spec(tmp_path, "a")
    _spec(tmp_path, "b", deps=["a"])
    calls: list = []
    first = Conductor(str(tmp_path), provider=_editing_provider(tmp_path, calls), max_fixes=0).build()
    assert first.specs_compiled == ["a"] and first.specs_failed == ["b"], first.errors
    assert "changed while this build ran" in first.errors["b"]
    _spec(tmp_path, "b", deps=["a"], variant="variant-1")  # the edit undone
    calls.clear()
    again = Conductor(str(tmp_path), provider=_editing_provider(tmp_path, calls), max_fixes=0).build()
    assert again.success and "b" in again.specs_compiled and calls == ["b"], (again.errors, calls)
    assert "# variant-1" in (tmp_path / "build" / "b.py").read_text()


def test_a_step_result_is_data_never_a_pickle_run_by_the_orchestrator(tmp_path):
    """Before: the step's result was unpickled in the perform process: an object's __reduce__
    ran os.system there (outside any sandbox) and could forge the step's output."""
    marker = tmp_path / "ran-outside-the-sandbox"
    step = ("import os\n\nclass Evil:\n    def __reduce__(self):\n"
            f"        return (os.system, ('touch {marker}',))\n\n"
            "def run(value):\n    return {'result': Evil()}\n")
    conductor = workflow_project(tmp_path / "proj", "- name: one\n  spec: evil\n  inputs:\n    value: inputs.value\n",
                                 {"evil": step})
    result = conductor.perform("flow", {"value": 1})
    assert not marker.exists(), "the step's result ran code in the orchestrator"
    assert not result.success and "not plain data" in (result.steps[0].error or ""), result.steps[0].error


def test_a_step_returning_a_structure_that_contains_itself_fails_in_one_clear_line(tmp_path):
    """Before: the perform flow itself crashed with RecursionError."""
    step = "def run(value):\n    loop = {'value': value}\n    loop['self'] = loop\n    return {'result': loop}\n"
    conductor = workflow_project(tmp_path / "proj", "- name: one\n  spec: loop\n  inputs:\n    value: inputs.value\n",
                                 {"loop": step})
    result = conductor.perform("flow", {"value": 1})
    assert not result.success and "it refers to itself" in (result.steps[0].error or ""), result.error


def _plain_provider(*names):
    code = {n: f"def {n}(value):\n    return value\n" for n in names}
    tests = {n: f"from {n} import {n}\n\ndef test_it():\n    assert {n}(3) == 3\n" for n in names}
    return kit_build.build_provider(code, tests, {f"marker-{n}": n for n in names})


def test_a_prompt_larger_than_the_budget_left_is_never_sent(tmp_path):
    """Before: the whole prompt was sent and paid, then the budget said "reached: 10,4xx of 2,000"."""
    _spec(tmp_path, "big", variant="x" * 40_000)  # ~10,000 tokens in every prompt of its build
    provider = _plain_provider("big")
    result = Conductor(str(tmp_path), provider=provider).build(max_tokens=2000)
    assert provider.prompts == [] and result.specs_budget_skipped == ["big"], (len(provider.prompts), result.errors)
    assert "prompt alone is ~1" in result.details["big"].error and "nothing was sent" in result.details["big"].error


def test_a_spec_over_the_size_limit_is_refused_before_any_call(tmp_path):
    """Before: a 10.8 MB spec went out as one 2.7 M-token call."""
    from spechestra.core.options import MAX_SPEC_BYTES
    _spec(tmp_path, "huge", variant="y" * (MAX_SPEC_BYTES + 10))
    _spec(tmp_path, "small")
    provider = _plain_provider("huge", "small")
    result = Conductor(str(tmp_path), provider=provider).build()
    said = result.errors.get("huge", "")
    assert provider.prompts == [] and result.specs_failed == ["huge"] and result.flow_run_id is None, result
    assert "huge.spec.md is 1.0 MiB: specs over 1 MiB are refused" in said and "\n" not in said, said


def _tear(path: Path) -> None:
    """A torn write from outside: the first half of the file."""
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def test_a_torn_cache_entry_is_recovered_from_build_never_paid_for_silently(tmp_path):
    """Before: a truncated cache entry made the next build pay for the spec again without a word,
    and `status` said "cached: yes" for it."""
    from spechestra.core.build_cache import BuildCache
    _spec(tmp_path, "a")
    assert Conductor(str(tmp_path), provider=_plain_provider("a")).build().specs_compiled == ["a"]
    [entry] = (tmp_path / ".spechestra" / "cache").glob("*.json")
    _tear(entry)
    key = entry.name[: -len(".json")]
    assert key not in BuildCache(str(tmp_path)), "a damaged entry counted as cached"
    assert list(entry.parent.glob("*.damaged-*")), "the damaged entry was not set aside"
    provider = _plain_provider("a")
    again = Conductor(str(tmp_path), provider=provider).build()
    assert again.success and provider.prompts == [] and again.specs_skipped == ["a"], (again, len(provider.prompts))
    assert BuildCache(str(tmp_path)).get(key) is not None  # written again, whole
    _tear(entry)  # and now the built file was edited too: nothing to recover from, so built again
    (tmp_path / "build" / "a.py").write_text("def a(value):\n    return 0\n")
    provider = _plain_provider("a")
    third = Conductor(str(tmp_path), provider=provider).build()
    assert third.specs_compiled == ["a"] and len(provider.prompts) == 2


def test_status_says_when_a_spec_record_is_damaged(tmp_path):
    """Before: a truncated manifest read as "never built" beside "cached: yes"."""
    from spechestra.core.status import project_status
    _spec(tmp_path, "a")
    conductor = Conductor(str(tmp_path), provider=_plain_provider("a"))
    assert conductor.build().specs_compiled == ["a"]
    _tear(tmp_path / ".spechestra" / "manifest" / "a.json")
    [found] = project_status(conductor, {})
    assert found.state == "record damaged" and "a.json cannot be read" in found.error, found
    provider = _plain_provider("a")
    assert Conductor(str(tmp_path), provider=provider).build().success and provider.prompts == []
    [found] = project_status(conductor, {})
    assert found.state == "built", found  # the next build rewrote it


def test_a_spec_in_a_folder_gets_its_tests_beside_it_and_they_import_its_code(tmp_path):
    """Before: spec `pkg/calc` got its tests at `test_pkg/calc.py`, a module named `calc` that
    imported itself instead of pkg/calc.py, so its tests failed however right the code was."""
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "calc.spec.md").write_text(
        kit.spec_markdown("pkg/calc", description="Spec calc marker-calc."))
    provider = kit_build.build_provider({"calc": "def calc(value):\n    return value + 1\n"},
                                        {"calc": "from calc import calc\n\ndef test_it():\n    assert calc(1) == 2\n"},
                                        {"marker-calc": "calc"})
    result = Conductor(str(tmp_path), provider=provider, max_fixes=0).build()
    assert result.specs_compiled == ["pkg/calc"], result.errors
    assert (tmp_path / "build" / "pkg" / "test_calc.py").exists() and not (tmp_path / "build" / "test_pkg").exists()


def test_two_specs_that_would_be_one_module_are_refused_before_any_call(tmp_path):
    """Before: `a/util` and `b/util` were both built; `import util` in either's tests found one."""
    for folder in ("a", "b"):
        (tmp_path / "src" / folder).mkdir(parents=True)
        (tmp_path / "src" / folder / "util.spec.md").write_text(kit.spec_markdown(f"{folder}/util"))
    provider = _plain_provider("util")
    result = Conductor(str(tmp_path), provider=provider).build()
    assert provider.prompts == [] and sorted(result.specs_failed) == ["a/util", "b/util"], result.errors
    assert "would both be the module 'util'" in result.errors["a/util"]


BUILD_IN_SUBPROCESS = '''
import json, sys
sys.path[:0] = {paths!r}
from kit import build as kit_build
from spechestra import Conductor
provider = kit_build.build_provider({{"thing": "def thing(value):\\n    return value\\n"}},
                                    {{"thing": "from thing import thing\\n\\ndef test_it():\\n    assert thing(3) == 3\\n"}},
                                    {{"marker-thing": "thing"}})
result = Conductor({project!r}, provider=provider).build()
print("RESULT", json.dumps({{"errors": result.errors, "paid": len(provider.prompts),
                            "row": {{k: v.llm_calls for k, v in result.details.items()}}}}))
'''


def _in_own_mounts(tmp_path, mounts: str, script: str) -> dict:
    """Run `script` (Python) after `mounts` (shell) in a mount namespace of its own, against the
    test run's Prefect server; what it printed after RESULT, as JSON."""
    import json
    import sys

    from prefect.settings import PREFECT_API_URL
    (tmp_path / "script.py").write_text(script)
    done = in_own_mounts(f"{mounts} && {sys.executable} {tmp_path / 'script.py'}", timeout=240,
                         PREFECT_API_URL=PREFECT_API_URL.value())
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[0][7:])


@needs_unshare
def test_a_build_folder_that_cannot_be_written_keeps_the_paid_calls_and_says_what_next(tmp_path):
    """Before: the spec's row said 0 calls although 2 were paid, and the message was Prefect's
    "Task run encountered an exception" around the error. A real read-only bind mount of build/
    (its .spechestra/ stays writable: staging works, publishing cannot), in the test's own mount
    namespace."""
    import sys
    project, side = tmp_path / "proj", tmp_path / "side"
    _spec(project, "thing")
    (project / "build" / ".spechestra").mkdir(parents=True)
    side.mkdir()
    build, inner = project / "build", project / "build" / ".spechestra"
    said = _in_own_mounts(tmp_path, f"mount --bind {inner} {side} && mount --bind -o ro {build} {build} && "
                                    f"mount --bind {side} {inner}",
                          BUILD_IN_SUBPROCESS.format(paths=sys.path, project=str(project)))
    assert said["paid"] == 2 and said["row"] == {"thing": 2}, said
    error = said["errors"]["thing"]
    assert error.startswith("built and cached, but not written to build/: cannot write ") and "read-only" in error
    assert "no new call" in error and "Task run encountered" not in error, error
    again = Conductor(str(project), provider=_plain_provider("thing")).build()  # writable again: from the cache
    assert again.success and again.llm_calls_made == 0 and (project / "build" / "thing.py").exists(), again.errors


PERFORM_IN_SUBPROCESS = '''
import json, sys
sys.path[:0] = {paths!r}
from pathlib import Path
from kit import workflow_project
conductor = workflow_project(Path({project!r}), "- name: one\\n  spec: big\\n  inputs:\\n    value: inputs.value\\n",
                             {{"big": "def run(value):\\n    return {{'result': 'x' * 300_000}}\\n"}})
result = conductor.perform("flow", {{"value": 1}})
print("RESULT", json.dumps({{"success": result.success, "error": result.steps[0].error}}))
'''


@needs_unshare
def test_a_full_temp_folder_during_perform_is_named_as_the_cause(tmp_path):
    """Before: "the step's outputs cannot be read back (JSONDecodeError): the step process wrote
    something else than its result" (earlier: "Ran out of input"), blaming the step. A real
    256 KiB tmpfs as TMPDIR, in the test's own mount namespace."""
    import sys
    small = tmp_path / "small"
    small.mkdir()
    said = _in_own_mounts(tmp_path, f"mount -t tmpfs -o size=256k tmpfs {small} && export TMPDIR={small}",
                          PERFORM_IN_SUBPROCESS.format(paths=sys.path, project=str(tmp_path / "proj")))
    assert not said["success"], said
    assert said["error"].startswith(f"the temp folder {small} is full (0.0 MiB free)"), said
    assert "set TMPDIR to a larger disk" in said["error"] and "\n" not in said["error"], said


def test_a_workflow_input_is_held_to_the_type_its_step_declares(tmp_path):
    """Before: a workflow that declares no inputs passed `value="abc"` to a step whose spec says
    `value: integer`, and the step returned "abcabc"."""
    from spechestra.errors import WorkflowError
    step = "def run(value):\n    return {'result': value * 2}\n"
    conductor = workflow_project(tmp_path / "proj", "- name: one\n  spec: double\n  inputs:\n    value: inputs.value\n"
                                 "- name: two\n  spec: double\n  inputs:\n    value: '7'\n", {"double": step})
    flow = tmp_path / "proj" / "src" / "flow.spec.md"
    flow.write_text(flow.read_text().replace("inputs:\n  value:\n    type: integer\n", "inputs: {}\n"))  # untyped
    with pytest.raises(WorkflowError) as refused:
        conductor.perform("flow", {"value": "abc"})
    said = str(refused.value)
    assert "step 'one': input 'value' gets workflow input value='abc', which is not an integer" in said, said
    assert "step 'two': input 'value' gets '7', which is not an integer (spec 'double' declares value: integer)" in said
    assert not list((tmp_path / "proj" / "build" / ".spechestra").glob("traces/*.json"))  # nothing ran


FORCE_PASS = ("import pytest\n\n@pytest.hookimpl(hookwrapper=True)\n"
              "def pytest_runtest_makereport(item, call):\n    outcome = yield\n    outcome.get_result().outcome = 'passed'\n")


@pytest.mark.parametrize("sandbox", ["off", "auto"])
def test_a_test_that_writes_build_never_changes_what_later_specs_are_tested_against(tmp_path, sandbox):
    """Before, with SPECHESTRA_SANDBOX=off: a's test wrote build/conftest.py, which turns every
    failure into a pass, and b, whose test fails, was reported built. With the sandbox (auto here)
    build/ is read-only to tests; with nothing to contain them, what a run changed in build/ is put
    back after it and the run fails saying so."""
    from spechestra.settings import temporary_settings
    _spec(tmp_path, "a")
    _spec(tmp_path, "b", deps=["a"])
    build = tmp_path / "build"
    writer = (f"    try:\n        open({str(build / 'conftest.py')!r}, 'w').write({FORCE_PASS!r})\n"
              "    except OSError:\n        pass\n")
    tests = {"a": "from a import a\n\ndef test_it():\n" + writer + "    assert a(3) == 3\n",
             "b": "from b import b\n\ndef test_it():\n    assert b(3) == 1003\n"}
    provider = kit_build.build_provider({n: f"def {n}(value):\n    return value\n" for n in "ab"}, tests,
                                        {"marker-a": "a", "marker-b": "b"})
    with temporary_settings(sandbox=sandbox):
        result = Conductor(str(tmp_path), provider=provider, max_fixes=0).build(max_workers=1)
    assert "b" not in result.specs_compiled, (result.contained, result.errors)
    assert not (build / "conftest.py").exists()
    if sandbox == "off":
        assert "the tests changed build/ (added conftest.py): put back as it was" in result.errors["a"]
