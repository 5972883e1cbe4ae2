"""Bad input: a clear error or a cancelled result, and never a file outside src/."""

import os

import pytest

import kit
from kit.build import write_wide_project
from kit.cli import main_in_process, prefect_console_restored  # noqa: F401 (a fixture)
from spechestra import Composer

pytestmark = pytest.mark.timeout(180)


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


@pytest.mark.parametrize("request_text", ["", "   \n", None])
def test_empty_request_is_refused(project, request_text):
    composer = Composer(str(project), provider=kit.composer_provider())
    with pytest.raises(ValueError, match="request is empty"):
        composer.compose(request_text, auto_accept=True)
    with pytest.raises(ValueError, match="request is empty"):
        composer.draft_architecture(request_text)
    assert composer.meter.calls == 0


@pytest.mark.parametrize("answer, fragment", [
    ("```yaml\ncomponents: [unclosed\n```", "not valid YAML"),
    ("Sorry, I cannot help with that.", "must be a mapping"),
    ("```yaml\n" + kit.architecture([{"name": "../evil", "type": "function"}]) + "```", "escape the specs directory"),
    ("```yaml\n" + kit.architecture([{"name": "/tmp/x", "type": "function"}]) + "```", "absolute path"),
    ("```yaml\n" + kit.architecture([{"name": "a", "dependencies": ["b"]}, {"name": "b", "dependencies": ["a"]}])
     + "```", "dependency cycle"),
    ("```yaml\n" + kit.architecture([{"name": "a"}, {"name": "a"}]) + "```", "duplicate component name"),
])
def test_unusable_drafts_cancel_with_the_reason(tmp_path, answer, fragment):
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    composer = Composer(str(project), provider=kit.composer_provider(arch_yaml=answer))
    draft = composer.draft_architecture("anything")
    assert draft.components == [] and fragment in draft.description
    result = composer.compose("anything", auto_accept=True)
    assert result.cancelled and not result.ready_for_build
    assert fragment in result.message
    assert _files(tmp_path) == []  # nothing in src/, nothing beside it, nothing in /tmp/x
    assert not os.path.exists("/tmp/x.spec.md")


def test_edited_architecture_with_escape_is_not_used(project):
    evil = kit.architecture([{"name": "../evil", "type": "function"}])
    composer = Composer(str(project), provider=kit.composer_provider())
    result = composer.compose("CSV statistics", review_callback=lambda req: {"approve": True, "architecture_yaml": evil})
    assert result.cancelled and "escape the specs directory" in result.message
    assert _files(project) == []


def test_a_first_compose_with_no_llm_set_up_is_one_line_naming_the_default(tmp_path, capsys, monkeypatch):
    """Before: 49 lines of Prefect traceback ending in "gemini needs an API key"."""
    from spechestra.cli import main
    from spechestra.orchestration.history import read_flow_runs
    for name in ("SPECHESTRA_PROVIDER", "SPECSOLOIST_LLM_PROVIDER", "GEMINI_API_KEY", "SPECHESTRA_API_KEY_BLOCK"):
        monkeypatch.delenv(name, raising=False)
    runs_before = len(read_flow_runs("compose", limit=200))
    project = tmp_path / "first"
    code = main(["compose", "a calculator", "--project", str(project), "--yes"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "Prefect server" not in line]
    assert code == 2 and len(" ".join(lines).split("error: ")) == 2, err
    said = " ".join(" ".join(lines).split())
    assert "gemini needs an API key: set GEMINI_API_KEY" in said and "SpecSoloist's default provider" in said, said
    assert not project.exists() and len(read_flow_runs("compose", limit=200)) == runs_before


@pytest.mark.usefixtures("prefect_console_restored")
def test_a_build_with_no_llm_set_up_counts_no_call(tmp_path, capsys, monkeypatch):
    """The key is looked for at the first call a spec needs (a cached rebuild needs none). Before:
    each spec's missing key counted as a call made, and the report said "4 LLM call(s) made in
    all: 4 by attempts that did not finish" when none had been made."""
    for name in ("SPECHESTRA_PROVIDER", "SPECSOLOIST_LLM_PROVIDER", "GEMINI_API_KEY", "SPECHESTRA_API_KEY_BLOCK"):
        monkeypatch.delenv(name, raising=False)
    project = tmp_path / "wide"
    write_wide_project(project)
    code, out, err = main_in_process(capsys, ["build", "--project", str(project)])
    said = " ".join((out + err).split())
    assert code == 1 and "gemini needs an API key: set GEMINI_API_KEY" in said, said[-3000:]
    assert "This run: 0 LLM call(s)" in said and "made in all" not in said, said[-3000:]
