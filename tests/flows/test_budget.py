"""A hard spending cap: no call starts past it, unstarted specs end Skipped (budget), their
dependents are not attempted, the run says "budget reached", and a rebuild with a larger cap
resumes from the cache without paying again for any call."""

import pytest

from kit import build as kit_build
from spechestra import Conductor
from spechestra.core.models import Outcome
from spechestra.orchestration.history import read_flow_run, wait_for_task_runs

pytestmark = pytest.mark.timeout(300)


def test_a_call_cap_stops_the_build_and_a_larger_cap_resumes_it(tmp_path):
    kit_build.write_chain_project(tmp_path)  # a <- b <- c <- d, two calls each (code, tests)
    provider = kit_build.chain_provider()
    capped = Conductor(str(tmp_path), provider=provider).build(max_workers=1, max_llm_calls=3)
    assert not capped.success and capped.budget_reached == "budget reached: 3 of 3 LLM calls"
    assert capped.outcome == Outcome.BUDGET_REACHED
    assert capped.specs_compiled == ["a"] and capped.specs_budget_skipped == ["b", "c", "d"]
    assert len(provider.prompts) == 3  # a's two calls, b's code: b's tests call never started
    assert capped.details["b"].error == "budget reached: 3 of 3 LLM calls" and capped.details["b"].llm_calls == 1
    assert capped.details["c"].error == "budget: dependency b was skipped"
    run = read_flow_run(capped.flow_run_id)
    assert (run.state.type.value, run.state.name) == ("CANCELLED", "BudgetReached")
    assert "budget reached: 3 of 3 LLM calls" in run.state.message
    states = {t.name: t.state.name for t in wait_for_task_runs(capped.flow_run_id, expected=4)}
    assert states == {"a": "Completed", "b": "Skipped", "c": "Skipped", "d": "Skipped"}

    resumed = Conductor(str(tmp_path), provider=provider).build(max_workers=1, max_llm_calls=20)
    assert resumed.success and resumed.specs_skipped == ["a"] and resumed.specs_compiled == ["b", "c", "d"]
    assert resumed.details["b"].reused == 1  # b's code answer, paid for in the capped run
    assert len(provider.prompts) == 8  # 2 per spec in all: no call was paid for twice
    assert len(set(provider.prompts)) == 8


def test_a_token_cap_stops_new_calls_once_reached(tmp_path):
    kit_build.write_wide_project(tmp_path)  # four independent specs
    provider = kit_build.chain_provider()
    wide = kit_build.build_provider({n: f"def {n}(value):\n    return value\n" for n in "pqrs"},
                                    {n: f"from {n} import {n}\n\ndef test_it():\n    assert {n}(3) == 3\n" for n in "pqrs"},
                                    {f"marker-{n}": n for n in "pqrs"})
    result = Conductor(str(tmp_path), provider=wide).build(max_workers=1, max_tokens=1)
    assert result.budget_reached.startswith("budget reached: ") and "of 1 tokens" in result.budget_reached
    # No prompt fits in 1 token: not even the first call is sent (it was, and paid in full, before
    # each call's estimated prompt was checked against what is left).
    assert len(wide.prompts) == 0 and len(result.specs_budget_skipped) == 4
    assert provider.prompts == []


def test_the_pipeline_caps_compose_and_build_together_and_ends_budget_reached(tmp_path):
    from spechestra.pipeline import run_pipeline
    provider = kit_build.pipeline_provider()
    result = run_pipeline("A number doubler", str(tmp_path), auto_accept=True, inputs={"value": 1},
                          provider=provider, max_llm_calls=6)  # compose: draft + 2 specs; build: double's 2
    assert result.outcome == Outcome.BUDGET_REACHED and result.stage == "build" and result.perform is None
    assert result.build.specs_compiled == ["double"] and result.build.specs_budget_skipped == ["twice"]
    assert "budget reached: 6 of 6 LLM calls" in result.message
    assert len(provider.prompts) == 6
    run = read_flow_run(result.flow_run_id)
    assert (run.state.type.value, run.state.name) == ("CANCELLED", "BudgetReached")


def test_a_deployment_takes_its_cap_from_a_prefect_variable(tmp_path):
    from prefect.variables import Variable
    kit_build.write_chain_project(tmp_path)
    Variable.set("spechestra_max_llm_calls", "2", overwrite=True)
    try:
        result = Conductor(str(tmp_path), provider=kit_build.chain_provider()).build(max_workers=1)
    finally:
        Variable.unset("spechestra_max_llm_calls")
    assert result.budget_reached == "budget reached: 2 of 2 LLM calls" and result.specs_compiled == ["a"]
    again = Conductor(str(tmp_path), provider=kit_build.chain_provider()).build(max_workers=1)
    assert again.success  # the Variable gone, no cap


def test_a_compose_stops_at_its_cap_and_says_so(tmp_path):
    """Before: compose calls were never counted (a pipeline's cap began at its build)."""
    import kit
    from spechestra import Composer
    (tmp_path / "src").mkdir()
    provider = kit.composer_provider()
    result = Composer(str(tmp_path), provider=provider).compose("CSV statistics", auto_accept=True, max_llm_calls=3)
    assert result.outcome == Outcome.BUDGET_REACHED and not result.ready_for_build
    assert len(provider.prompts) == 3 and len(result.spec_paths) == 2  # the draft and two of the four specs
    assert len(result.failed) == 2 and all("budget reached: 3 of 3 LLM calls" in why for why in result.failed.values())
    assert "budget reached: 3 of 3 LLM calls" in result.message
    run = read_flow_run(result.flow_run_id)
    assert (run.state.type.value, run.state.name) == ("CANCELLED", "BudgetReached")


def test_a_rebuild_after_the_cap_replays_a_paid_fix_instead_of_paying_again(tmp_path):
    """Before: a fix's prompt carries its test run's output, which named the spec's staging folder
    (a new one per build: `.spechestra/staging/a-<pid>-<random>/`) and pytest's timing, so the
    rebuild asked the fix it had paid for again, in other words (5 calls where 4 are needed)."""
    kit_build.write_chain_project(tmp_path)
    for extra in "bcd":
        (tmp_path / "src" / f"{extra}.spec.md").unlink()
    fixes = ["def a(value):\n    return value + 2\n", "def a(value):\n    return value\n"]
    provider = kit_build.build_provider(
        {"a": "def a(value):\n    return value + 1\n"}, {"a": "from a import a\n\ndef test_it():\n    assert a(3) == 3\n"},
        {"marker-a": "a"}, fix=lambda p: f"### FILE: build/a.py\n{fixes[sum('tasked with fixing' in q for q in provider.prompts) - 1]}### END\n")
    capped = Conductor(str(tmp_path), provider=provider).build(max_workers=1, max_llm_calls=3)  # code, tests, fix 1
    assert capped.specs_budget_skipped == ["a"] and len(provider.prompts) == 3

    resumed = Conductor(str(tmp_path), provider=provider).build(max_workers=1, max_llm_calls=20)
    assert resumed.success and resumed.details["a"].reused == 3, resumed.details["a"]
    assert len(provider.prompts) == 4  # fix 2 only: code, tests and fix 1 were replayed
