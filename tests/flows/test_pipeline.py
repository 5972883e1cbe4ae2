"""compose_build_perform end to end: three subflows, reviews through the Prefect API, a trace."""

import threading
import time

import pytest

from kit import build as kit_build
from kit.runs import paused_runs, stages
from spechestra.core.models import ReviewDecision
from spechestra.orchestration.history import read_flow_run
from spechestra.orchestration.pauses import resume_with_input
from spechestra.pipeline import run_pipeline

pytestmark = pytest.mark.timeout(300)


def test_auto_accept_runs_every_stage_and_returns_the_trace(tmp_path):
    result = run_pipeline("A number doubler", str(tmp_path), auto_accept=True, inputs={"value": 21},
                          provider=kit_build.pipeline_provider())
    assert result.success, result.message
    assert result.stage == "perform" and result.perform.outputs == {"result": 42}
    assert sorted(result.build.specs_compiled) == ["double", "twice"]
    assert [s["name"] for s in result.perform.trace["steps"]] == ["first"]
    assert stages(result.flow_run_id) == [("compose", "Completed"), ("build", "Completed"), ("perform", "Completed")]


def _answer_pauses(box, approve_first=True, stop=lambda: False):
    """Answer every paused run through the Prefect API, as the UI would; returns what was answered."""
    answered = []
    deadline = time.monotonic() + 200  # the work sets "done" however it ends (see _in_thread)
    while "done" not in box and time.monotonic() < deadline:
        for run in paused_runs():
            if str(run.id) + (run.state.state_details.pause_key or "") in answered:
                continue
            resume_with_input(str(run.id), {"decision": "approve" if approve_first else "reject", "comment": "from the test"})
            answered.append(str(run.id) + (run.state.state_details.pause_key or ""))
        time.sleep(0.2)
    return answered


def _in_thread(box, work):
    """Run `work` in a thread; whatever happens, `box` ends with "done" and a result or an error."""
    def target():
        try:
            box["result"] = work()
        except BaseException as exc:  # handed to the test's thread by _outcome
            box["error"] = exc
        finally:
            box["done"] = True

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _outcome(box, thread):
    thread.join(60)
    if "error" in box:
        raise box["error"]
    return box["result"]


def test_reviews_pause_and_are_answered_through_the_api(tmp_path):
    box = {}
    thread = _in_thread(box, lambda: run_pipeline("A number doubler", str(tmp_path), inputs={"value": 5},
                                                  provider=kit_build.pipeline_provider()))
    answered = _answer_pauses(box)
    result = _outcome(box, thread)
    assert result.success, result.message
    assert len(answered) == 2  # the architecture review, then the spec review (twice has no checkpoint)
    assert {a[:36] for a in answered} == {result.flow_run_id}  # the pipeline run itself paused, not a subflow
    assert result.perform.outputs == {"result": 10}


def test_rejected_review_builds_nothing(tmp_path):
    box = {}
    thread = _in_thread(box, lambda: run_pipeline("A number doubler", str(tmp_path),
                                                  provider=kit_build.pipeline_provider()))
    _answer_pauses(box, approve_first=False)
    result = _outcome(box, thread)
    assert not result.success and result.stage == "compose" and "nothing built" in result.message
    assert not (tmp_path / "build").exists() or not list((tmp_path / "build").rglob("*.py"))
    assert stages(result.flow_run_id) == [("compose", "Rejected")]  # no build, no perform subflow
    assert read_flow_run(result.flow_run_id).state.name == "Rejected"


def test_failed_build_skips_perform_and_says_why(tmp_path):
    provider = kit_build.pipeline_provider()
    broken = "def double(value):\n    return {'result': 0}\n"  # fails its tests; every fix returns it again
    provider.rules.insert(0, (lambda p: "The double component." in p and "You are an expert QA" not in p, broken))
    result = run_pipeline("A number doubler", str(tmp_path), auto_accept=True, provider=provider)
    assert not result.success and result.stage == "build" and result.perform is None
    assert "perform skipped" in result.message and "double" in result.message
    assert stages(result.flow_run_id) == [("compose", "Completed"), ("build", "Failed")]
    assert read_flow_run(result.flow_run_id).state.is_failed()


def test_terminal_reviewer_answers_the_same_pauses(tmp_path):
    from rich.console import Console

    from spechestra.cli.terminal_review import run_with_terminal_review
    seen = []

    def ask(console, req, **_):
        seen.append(req.stage)
        return ReviewDecision(approve=True)

    result = run_with_terminal_review(
        lambda: run_pipeline("A number doubler", str(tmp_path), inputs={"value": 2},
                             provider=kit_build.pipeline_provider()), Console(quiet=True), ask=ask)
    assert seen == ["architecture", "specs"] and result.success and result.perform.outputs == {"result": 4}


def test_a_raising_pipeline_reports_its_own_error_at_once(tmp_path):
    """A pipeline that raises (here: a provider name that cannot be imported) surfaces that
    error from the helper, instead of a wait for pauses that never come and a KeyError."""
    box = {}
    started = time.monotonic()
    thread = _in_thread(box, lambda: run_pipeline("x", str(tmp_path), provider=None, max_workers=0))
    _answer_pauses(box)
    with pytest.raises(Exception) as info:
        _outcome(box, thread)
    assert not isinstance(info.value, KeyError) and "max_workers" in str(info.value)
    assert time.monotonic() - started < 60
