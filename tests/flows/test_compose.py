"""Composer on a scripted provider, in real Prefect flow runs read back from the Prefect API."""

import os

import pytest
from specsoloist.parser import SpecParser

import kit
from spechestra import Composer
from spechestra.orchestration.history import read_flow_run, read_flow_runs, wait_for_task_runs

pytestmark = pytest.mark.timeout(180)


def test_compose_writes_valid_specs_in_a_flow_run(project):
    composer = Composer(str(project), provider=kit.composer_provider())
    result = composer.compose("CSV statistics with a report", auto_accept=True)

    assert result.ready_for_build and not result.cancelled
    names = [c.name for c in result.architecture.components]
    assert len(names) >= 4
    parser = SpecParser(str(project / "src"))
    for name in names:
        path = project / "src" / f"{name}.spec.md"
        assert str(path) in result.spec_paths
        assert parser.validate_spec(name)["valid"], parser.validate_spec(name)
    assert composer.meter.calls == 1 + len(names)

    run = read_flow_run(result.flow_run_id)
    assert run.state.is_completed()
    tasks = wait_for_task_runs(result.flow_run_id, expected=1 + len(names))
    task_names = sorted(t.name for t in tasks)
    assert task_names == sorted(["draft-architecture", *names])
    assert all(t.state.is_completed() for t in tasks)


def test_existing_specs_are_skipped_never_overwritten(project):
    (project / "src" / "stats.spec.md").write_text(kit.spec_markdown("stats", deps=["parse_csv"]) + "\n<!-- mine -->\n")
    composer = Composer(str(project), provider=kit.composer_provider())
    result = composer.compose("CSV statistics", auto_accept=True)
    assert result.skipped == ["stats"]
    assert "<!-- mine -->" in (project / "src" / "stats.spec.md").read_text()
    assert str(project / "src" / "stats.spec.md") not in result.spec_paths
    # The existing spec's name reached the architecture prompt.
    assert "- stats" in composer.provider.inner.prompts[0]


def test_invalid_spec_is_reported_and_nothing_half_written(project):
    broken = "---\nname: x\ntype: function\n---\nno sections at all\n"
    composer = Composer(str(project), provider=kit.composer_provider(spec_answer=broken))
    result = composer.compose("CSV statistics", auto_accept=True)
    assert not result.ready_for_build
    assert set(result.failed) == {c.name for c in result.architecture.components}
    assert all("Missing required section" in why for why in result.failed.values())
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(project) for f in files]
    assert leftovers == [str(project / ".spechestra" / "compose.lock")]  # the (released) lock, no spec


def test_generate_specs_outside_a_flow_runs_one_task_per_component(project):
    composer = Composer(str(project), provider=kit.composer_provider())
    arch = composer.draft_architecture("CSV statistics")
    assert len(arch.components) == 4
    created = composer.generate_specs(arch)
    assert sorted(created) == sorted(str(project / "src" / f"{c.name}.spec.md") for c in arch.components)
    assert created.failed == {} and created.skipped == []
    newest = read_flow_runs("generate-specs", limit=1)[0]  # its own small flow run
    tasks = wait_for_task_runs(str(newest.id), expected=len(arch.components))
    assert sorted(t.name for t in tasks) == sorted(c.name for c in arch.components)  # one task run each
    assert all(t.state.is_completed() for t in tasks)


def test_provider_selected_by_setting(project, monkeypatch):
    monkeypatch.setenv("SPECHESTRA_PROVIDER", "kit:four_component_factory")
    result = Composer(str(project)).compose("CSV statistics", auto_accept=True)
    assert result.ready_for_build and len(result.spec_paths) == 4


def test_custom_composer_keeps_flow_and_review(project):
    from spechestra import BaseComposer
    from spechestra.core.models import Architecture, ComponentDef

    class Fixed(BaseComposer):
        def draft(self, request, existing):
            return Architecture([ComponentDef("only_one", "function", request)])

        def write_spec(self, component, architecture):
            return kit.spec_markdown(component.name)

    seen = []
    result = Fixed(str(project)).compose("one thing", review_callback=lambda req: seen.append(req.stage) or True)
    assert seen == ["architecture", "specs"]
    assert result.ready_for_build and result.flow_run_id
    assert (project / "src" / "only_one.spec.md").exists()


def test_a_stop_an_earlier_run_was_given_does_not_refuse_the_next_api_call(tmp_path):
    """Before: after a Python-API run whose server went away (its ServerError asks that run to
    stop, process-wide), every later `draft_architecture` / `generate_specs` in the process was
    refused: "stopped (the Prefect server stopped answering)" (seen in CI, test order-dependent)."""
    from spechestra import stopping
    project = tmp_path / "p"
    (project / "src").mkdir(parents=True)
    stopping.request("the Prefect server stopped answering")  # what the earlier run's watch left
    try:
        draft = Composer(str(project), provider=kit.composer_provider()).draft_architecture("a calculator")
    finally:
        stopping.reset()
    assert draft.components, draft.description
