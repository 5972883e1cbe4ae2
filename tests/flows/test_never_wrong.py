"""Issue 9: builds that stay correct under failures and edits. Each test failed on the code
before the fix (named in its docstring)."""

from pathlib import Path

import pytest

import kit
from kit import build as kit_build
from spechestra import Conductor
from spechestra.orchestration.history import read_task_runs

pytestmark = pytest.mark.timeout(300)


def _project(root: Path, specs: dict) -> None:
    (root / "src").mkdir(parents=True, exist_ok=True)
    for name, deps in specs.items():
        (root / "src" / f"{name}.spec.md").write_text(kit.spec_markdown(name, deps=deps, description=f"Spec {name} marker-{name}."))


def _provider(names, code=None, tests=None):
    code = {n: f"def {n}(value):\n    return value\n" for n in names} | (code or {})
    tests = {n: f"from {n} import {n}\n\ndef test_it():\n    assert {n}(3) == 3\n" for n in names} | (tests or {})
    return kit_build.build_provider(code, tests, {f"marker-{n}": n for n in names})


def test_a_failure_is_never_served_from_the_cache(tmp_path):
    """Before: the failed spec came back `Cached` with 0 calls, its dependent stayed blocked."""
    _project(tmp_path, {"a": [], "b": ["a"]})
    broken = _provider("ab", code={"a": "def a(value):\n    return -1\n"})
    first = Conductor(str(tmp_path), provider=broken, max_fixes=0).build()
    assert first.specs_failed == ["a"] and first.specs_blocked == ["b"]
    good = _provider("ab")  # the same provider class and settings: the same cache keys as before
    again = Conductor(str(tmp_path), provider=good, max_fixes=0).build()
    assert again.success and sorted(again.specs_compiled) == ["a", "b"] and again.specs_skipped == []
    assert len(good.prompts) == 4  # both specs really built: compile + tests each
    states = {t.name: t.state.name for t in read_task_runs(again.flow_run_id)}
    assert states["a"] == "Completed" and states["b"] == "Completed"


def test_switching_provider_or_model_rebuilds(tmp_path, monkeypatch):
    """Before: a different provider or SPECSOLOIST_LLM_MODEL rebuilt nothing (0 calls)."""
    kit_build.write_wide_project(tmp_path, names="p")
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("CALL_TIMES", str(calls))
    monkeypatch.setenv("CALL_SECONDS", "0")
    monkeypatch.setenv("SPECHESTRA_PROVIDER", "kit.build:timed_wide_provider")
    count = lambda: len(calls.read_text().split("\n")) - 1 if calls.exists() else 0  # noqa: E731
    assert Conductor(str(tmp_path)).build().specs_compiled == ["p"] and count() == 2
    assert Conductor(str(tmp_path)).build().specs_skipped == ["p"] and count() == 2  # same provider: cached
    monkeypatch.setenv("SPECSOLOIST_LLM_MODEL", "another-model")
    assert Conductor(str(tmp_path)).build().specs_compiled == ["p"] and count() == 4  # another model: rebuilt
    explicit = _provider(["p"])  # another provider (an object, not the named factory): rebuilt
    assert Conductor(str(tmp_path), provider=explicit).build().specs_compiled == ["p"] and len(explicit.prompts) == 2
    assert Conductor(str(tmp_path), provider=_provider(["p"])).build().specs_skipped == ["p"]


def test_a_test_timeout_is_a_failure_not_a_provider_retry(tmp_path):
    """Before: "timed out" in the test output made Prefect retry the whole task."""
    _project(tmp_path, {"a": []})
    slow_tests = {"a": "import time\nfrom a import a\n\ndef test_it():\n    time.sleep(30)\n"}
    result = Conductor(str(tmp_path), provider=_provider("a", tests=slow_tests), max_fixes=0, test_timeout=2).build()
    assert result.specs_failed == ["a"] and "tests timed out after 2s" in result.errors["a"]
    assert result.details["a"].attempts == 1
    runs = [t for t in read_task_runs(result.flow_run_id) if t.name == "a"]
    assert len(runs) == 1 and runs[0].run_count == 1  # one attempt: no task-level retry


def test_tests_that_exit_zero_without_running_are_not_a_pass(tmp_path):
    """Before: `os._exit(0)` at import made pytest exit 0 having run nothing: reported built."""
    _project(tmp_path, {"a": []})
    sneaky = {"a": "import os\nos._exit(0)\n\ndef a(value):\n    return value\n"}
    result = Conductor(str(tmp_path), provider=_provider("a", code=sneaky), max_fixes=0).build()
    assert result.specs_failed == ["a"] and "no report" in result.errors["a"]
    empty = {"a": "def helper():\n    pass\n"}  # a test file with no tests at all
    (tmp_path / "src" / "a.spec.md").write_text(kit.spec_markdown("a", description="Spec a marker-a. v2"))
    result = Conductor(str(tmp_path), provider=_provider("a", tests=empty), max_fixes=0).build()
    assert result.specs_failed == ["a"] and "pytest ran no test" in result.errors["a"]


def test_hand_edited_build_files_are_kept_on_a_cached_rebuild_and_replaced_by_force(tmp_path):
    """Before: a no-op rebuild silently overwrote the user's edit."""
    _project(tmp_path, {"a": []})
    assert Conductor(str(tmp_path), provider=_provider("a")).build().success
    module = tmp_path / "build" / "a.py"
    module.write_text(module.read_text() + "# my change\n")
    again = Conductor(str(tmp_path), provider=_provider("a")).build()
    assert again.specs_skipped == ["a"] and "# my change" in module.read_text()
    assert any("kept a.py: edited by hand" in n for n in again.details["a"].notes)
    forced = Conductor(str(tmp_path), provider=_provider("a")).build(incremental=False)
    assert "# my change" not in module.read_text()
    assert any("replaced a.py" in n for n in forced.details["a"].notes)
    module.unlink()  # a missing file is simply restored
    assert Conductor(str(tmp_path), provider=_provider("a")).build().specs_skipped == ["a"] and module.exists()


@pytest.mark.parametrize("dependency", ["../../../evilspec", "../evilspec"])
def test_a_dependency_outside_the_specs_folder_is_refused_before_reading_it(tmp_path, dependency):
    """Before: `../../../evilspec` read a spec from outside the project and sent it to the LLM."""
    (tmp_path / "proj").mkdir()
    _project(tmp_path / "proj", {"a": [dependency]})
    for up in (tmp_path, tmp_path.parent, tmp_path.parent.parent):
        (up / "evilspec.spec.md").write_text(kit.spec_markdown("evilspec", description="SECRET marker-evilspec"))
    provider = _provider(["a", "evilspec"])
    try:
        result = Conductor(str(tmp_path / "proj"), provider=provider).build()
    finally:
        for up in (tmp_path, tmp_path.parent, tmp_path.parent.parent):
            (up / "evilspec.spec.md").unlink()
    assert not result.success and "not a spec name" in result.errors["a"] and provider.prompts == []


def test_names_and_output_paths_are_checked_before_any_llm_call(tmp_path):
    """Before: a 300-character name failed with OSError, and an escaping arrangement path was
    refused, only after a paid call; a name with a trailing newline was accepted."""
    from spechestra.core.models import ComponentDef
    from spechestra.errors import SpecError
    for bad in ("abc\n", "a" * 300):
        with pytest.raises(SpecError, match="^invalid component: name: component name "):
            ComponentDef(bad)
    _project(tmp_path, {"a": []})
    (tmp_path / "arrangement.yaml").write_text("target_language: python\noutput_paths:\n"
                                               "  implementation: ../../{name}.py\n  tests: tests/test_{name}.py\n"
                                               "build_commands:\n  test: pytest\n")
    provider = _provider("a")
    result = Conductor(str(tmp_path), provider=provider).build()
    assert not result.success and "output path" in result.problem and provider.prompts == []
    assert result.specs_failed == []  # the arrangement's problem, not the spec's


def test_an_arrangement_fix_naming_the_path_template_fixes_the_spec(tmp_path):
    """Before: SpecSoloist's fix prompt asks for `src/{name}.py` literally and the fix was refused."""
    _project(tmp_path, {"a": []})
    (tmp_path / "arrangement.yaml").write_text("target_language: python\noutput_paths:\n"
                                               "  implementation: pkg/{name}.py\n  tests: tests/test_{name}.py\n"
                                               "build_commands:\n  test: pytest\n")
    provider = _provider("a", code={"a": "def a(value):\n    return -1\n"})
    provider.rules[1] = ("tasked with fixing", "### FILE: pkg/{name}.py\ndef a(value):\n    return value\n### END\n")
    result = Conductor(str(tmp_path), provider=provider).build()
    assert result.success and result.details["a"].attempts == 2
    assert "return value" in (tmp_path / "build" / "pkg" / "a.py").read_text()
