"""Reviews are real Prefect pauses, answered through the Prefect client as the UI would."""

import threading

import pytest

import kit
from kit.runs import wait_for_flow_run_state
from spechestra import Composer
from spechestra.orchestration.pauses import resume_with_input

pytestmark = pytest.mark.timeout(240)


def _start(composer, request="CSV statistics"):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", composer.compose(request)), daemon=True)
    thread.start()
    for _ in range(600):
        if composer.last_flow_run_id:
            break
        thread.join(0.1)
    return thread, box, composer.last_flow_run_id


def _wait_paused(run_id):
    return wait_for_flow_run_state(run_id, lambda s: s.is_paused(), timeout=60)


def test_pause_then_approve_both_reviews(project):
    composer = Composer(str(project), provider=kit.composer_provider())
    thread, box, run_id = _start(composer)
    run = _wait_paused(run_id)
    assert run.state.name == "Paused"
    assert not list((project / "src").iterdir())  # nothing written before the architecture is approved
    resume_with_input(run_id, {"decision": "approve", "comment": "looks right"})
    _wait_paused(run_id)  # second pause: the written specs
    assert len(list((project / "src").rglob("*.spec.md"))) == 4
    resume_with_input(run_id, {"decision": "approve"})
    thread.join(60)
    assert box["result"].ready_for_build
    assert wait_for_flow_run_state(run_id, lambda s: s.is_completed(), timeout=30)


def test_reject_architecture_writes_nothing(project):
    composer = Composer(str(project), provider=kit.composer_provider())
    thread, box, run_id = _start(composer)
    _wait_paused(run_id)
    resume_with_input(run_id, {"decision": "reject", "comment": "too big"})
    thread.join(60)
    result = box["result"]
    assert result.cancelled and not result.ready_for_build and "too big" in result.message
    assert list((project / "src").rglob("*")) == []
    run = wait_for_flow_run_state(run_id, lambda s: s.is_final(), timeout=30)
    assert run.state.is_cancelled()


def test_reject_specs_removes_what_this_run_wrote(project):
    (project / "src" / "stats.spec.md").write_text(kit.spec_markdown("stats", deps=["parse_csv"]))
    composer = Composer(str(project), provider=kit.composer_provider())
    thread, box, run_id = _start(composer)
    _wait_paused(run_id)
    resume_with_input(run_id, {"decision": "approve"})
    _wait_paused(run_id)
    resume_with_input(run_id, {"decision": "reject"})
    thread.join(60)
    assert box["result"].cancelled and box["result"].spec_paths == []
    assert [p.name for p in (project / "src").rglob("*.spec.md")] == ["stats.spec.md"]  # the user's own spec stays


def test_edited_architecture_replaces_the_draft(project):
    composer = Composer(str(project), provider=kit.composer_provider())
    thread, box, run_id = _start(composer)
    _wait_paused(run_id)
    edited = kit.architecture([{"name": "parse_csv", "type": "function", "description": "only this"}])
    resume_with_input(run_id, {"decision": "edit", "architecture_yaml": edited})
    _wait_paused(run_id)
    resume_with_input(run_id, {"decision": "approve"})
    thread.join(60)
    result = box["result"]
    assert [c.name for c in result.architecture.components] == ["parse_csv"]
    assert [p.name for p in (project / "src").rglob("*.spec.md")] == ["parse_csv.spec.md"]


def test_the_form_links_the_whole_architecture_and_takes_any_case(project):
    """Before: the dialog showed two lines of YAML and cut the description column, no link to the
    rest; and the Decision field refused "Approve" (only lowercase matched its pattern)."""
    from prefect.input.actions import read_flow_run_input
    from prefect.input.run_input import keyset_from_paused_state

    from spechestra.orchestration.history import read_artifacts
    long_description = "Reads the CSV file given on the command line " + "and keeps every column " * 20 + "END."
    components = [{"name": "reader", "type": "function", "description": long_description, "dependencies": []},
                  {"name": "report", "type": "function", "description": "Prints it", "dependencies": ["reader"]}]
    arch = "```yaml\n" + kit.architecture(components) + "```"
    composer = Composer(str(project), provider=kit.composer_provider(arch))
    thread, box, run_id = _start(composer)
    run = _wait_paused(run_id)
    [whole] = read_artifacts(run_id, key="architecture-review")
    assert long_description in whole.data and "```yaml" in whole.data and "reader" in whole.data
    shown = read_flow_run_input(keyset_from_paused_state(run.state)["description"], flow_run_id=run.id)
    assert f"/artifacts/artifact/{whole.id}" in shown, shown
    resume_with_input(run_id, {"decision": " Approve "})  # as a person types it
    run = _wait_paused(run_id)
    [specs] = read_artifacts(run_id, key="specs-review")
    assert "reader.spec.md" in specs.data and "````markdown" in specs.data
    resume_with_input(run_id, {"decision": "APPROVE"})
    thread.join(60)
    assert box["result"].ready_for_build, box["result"].message


def test_two_answers_at_once_one_wins_and_the_other_says_so(project):
    """Before: `review --approve` and `--reject` at the same moment both printed success (3 of 5
    trials) and the specs were kept or deleted at random. Now exactly one answer claims the
    review, and it is the one the run acted on."""
    from spechestra.errors import ReviewError
    from spechestra.orchestration.pauses import answer_review
    composer = Composer(str(project), provider=kit.composer_provider())
    thread, box, run_id = _start(composer)
    _wait_paused(run_id)
    said, go = {}, threading.Barrier(2)

    def answer(approve):
        go.wait()
        try:
            said[approve] = answer_review(run_id, approve, comment="approve" if approve else "reject")
        except ReviewError as exc:
            said[approve] = exc

    answerers = [threading.Thread(target=answer, args=(a,)) for a in (True, False)]
    for t in answerers:
        t.start()
    for t in answerers:
        t.join(60)
    won = [a for a, s in said.items() if isinstance(s, str)]
    lost = [s for s in said.values() if isinstance(s, ReviewError)]
    assert len(won) == 1 and len(lost) == 1, said
    assert "this one was not applied" in str(lost[0])
    if won == [True]:
        _wait_paused(run_id)
        resume_with_input(run_id, {"decision": "approve"})
    thread.join(60)
    assert box["result"].ready_for_build is won[0], (won, box["result"].message)


def test_three_invalid_edits_end_the_compose_saying_why(project):
    """Before: the third edit that did not validate ended the compose as "rejected in review",
    the reviewer's decision (edit) and the reason lost."""
    composer = Composer(str(project), provider=kit.composer_provider())
    thread, box, run_id = _start(composer)
    bad = kit.architecture([{"name": "no good/../name", "type": "function", "description": "x"}])
    for _ in range(3):
        _wait_paused(run_id)
        resume_with_input(run_id, {"decision": "edit", "architecture_yaml": bad})
    thread.join(60)
    result = box["result"]
    run = wait_for_flow_run_state(run_id, lambda s: s.is_final(), timeout=30)
    for said in (result.message, run.state.message):
        assert "3 edits" in said and "no good/../name" in said and "errors.pydantic.dev" not in said, said
        assert "rejected in review" not in said, said
    assert result.cancelled and list((project / "src").rglob("*")) == []
    assert run.state.is_cancelled() and run.state.name == "Cancelled", run.state
