"""Conductor builds in real Prefect runs with real pytest runs of the generated code."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

import kit
from kit import build as kit_build
from spechestra import Conductor, SpecConductor
from spechestra.orchestration.history import read_artifacts, read_flow_run, wait_for_task_runs
from spechestra.providers import FlakyProvider

pytestmark = pytest.mark.timeout(300)
from kit import CORPUS


@pytest.fixture
def math_project(tmp_path):
    if not (CORPUS / "math").is_dir():
        pytest.skip(f"corpus not present at {CORPUS} (it exists in CI beside the repo)")
    shutil.copytree(CORPUS / "math", tmp_path / "math")
    return tmp_path / "math"


def test_corpus_math_builds_and_tests_pass(math_project):
    conductor = Conductor(str(math_project), provider=kit_build.math_provider())
    result = conductor.build()
    assert result.success, result.errors
    assert sorted(result.specs_compiled) == ["factorial", "is_prime", "math_utils", "math_workflow"]
    assert all(d.attempts == 1 and d.llm_calls == 2 for d in result.details.values())
    assert (math_project / "build" / "src" / "factorial.py").exists()  # arrangement output paths
    runs = {t.name: t for t in wait_for_task_runs(result.flow_run_id, expected=5)}
    assert sorted(runs) == ["factorial", "is_prime", "math_utils", "math_workflow", "prepare-environment"]
    assert any("'uv sync'" in line for line in result.setup)  # run, or skipped with a reason
    for dep in ("factorial", "is_prime"):  # no dependent started before its dependencies ended
        assert runs[dep].end_time <= runs["math_workflow"].start_time
    # The run graph's arrows: Prefect draws them from each task run's recorded upstream inputs; ours
    # are the `wait_for` ones (Prefect may add links of its own from parameter objects, by identity).
    upstream = {ref.id for ref in runs["math_workflow"].task_inputs.get("wait_for", [])}
    from spechestra.orchestration.prefect import client
    with client() as c:
        upstream_names = {c.read_task_run(i).name for i in upstream}
    assert upstream_names == {"factorial", "is_prime"}, runs["math_workflow"].task_inputs


def _chain_project(tmp_path, broken=None):
    """a <- b <- c, and an independent d; `broken` never passes its tests."""
    src = tmp_path / "src"
    src.mkdir()
    specs = {"a": [], "b": ["a"], "c": ["b"], "d": []}
    for name, deps in specs.items():
        (src / f"{name}.spec.md").write_text(kit.spec_markdown(name, deps=deps, description=f"Spec {name} marker-{name}."))
    code = {n: f"def {n}(value):\n    return value\n" for n in specs}
    tests = {n: f"from {n} import {n}\n\ndef test_it():\n    assert {n}(3) == 3\n" for n in specs}
    if broken:
        code[broken] = f"def {broken}(value):\n    return -1\n"
    markers = {f"marker-{n}": n for n in specs}
    return kit_build.build_provider(code, tests, markers)


def test_failure_isolation_blocks_dependents_only(tmp_path):
    conductor = Conductor(str(tmp_path), provider=_chain_project(tmp_path, broken="b"))
    result = conductor.build()
    assert not result.success
    assert result.specs_failed == ["b"] and result.specs_blocked == ["c"]
    assert sorted(result.specs_compiled) == ["a", "d"]
    assert "tests still failing" in result.errors["b"] and "b" in result.errors["c"]
    states = {t.name: t.state for t in wait_for_task_runs(result.flow_run_id, expected=4)}
    assert states["b"].is_failed() and states["c"].name == "Blocked" and states["a"].is_completed()
    assert result.details["b"].attempts == 3  # first run + 2 fixes


def test_a_failure_blocks_its_dependents_transitively(tmp_path):
    """a fails, so b is Blocked, and so is c behind b (Prefect would leave c NotReady, and the run
    Completed, had c waited on b's Cancelled-type state)."""
    conductor = Conductor(str(tmp_path), provider=_chain_project(tmp_path, broken="a"), max_fixes=0)
    result = conductor.build()
    assert result.specs_failed == ["a"] and result.specs_blocked == ["b", "c"] and result.specs_compiled == ["d"]
    states = {t.name: t.state.name for t in wait_for_task_runs(result.flow_run_id, expected=4)}
    assert states == {"a": "Failed", "b": "Blocked", "c": "Blocked", "d": "Completed"}
    assert read_flow_run(result.flow_run_id).state.is_failed()


def test_fix_loop_fixes_the_file_the_tests_import(tmp_path):
    fixed = "def a(value):\n    return value\n"
    provider = _chain_project(tmp_path, broken="a")
    provider.rules[1] = ("tasked with fixing", lambda p: f"### FILE: build/a.py\n{fixed}### END\n")
    result = Conductor(str(tmp_path), provider=provider).build(specs=["a"])
    assert result.success and result.details["a"].attempts == 2
    assert (tmp_path / "build" / "a.py").read_text().strip() == fixed.strip()
    assert not (tmp_path / "build" / "build").exists()  # SpecSoloist's attempt_fix would write here


def test_fix_naming_other_paths_writes_nothing_outside(tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-escape.py"
    provider = _chain_project(tmp_path, broken="a")
    provider.rules[1] = ("tasked with fixing", lambda p: f"### FILE: /tmp/{tmp_path.name}-evil.py\nx=1\n### END\n"
                         f"### FILE: ../../{outside.name}\nx=1\n### END\n")
    result = Conductor(str(tmp_path), provider=provider).build(specs=["a"])
    assert result.specs_failed == ["a"]
    assert not Path(f"/tmp/{tmp_path.name}-evil.py").exists() and not outside.exists()
    assert list((tmp_path / "build").glob("*.py")) == []  # a failing spec publishes nothing into build/
    kept = tmp_path / "build" / ".spechestra" / "failed" / "a"  # its files are kept aside to look at
    assert sorted(p.name for p in kept.glob("*.py")) == ["a.py", "test_a.py"]
    # The failure names the kept files, not the staging folder it ran in (removed since).
    error = result.details["a"].error
    assert "FAILED .spechestra/failed/a/test_a.py::" in error and "staging" not in error, error


def test_incremental_rebuilds_exactly_what_changed(tmp_path):
    provider = _chain_project(tmp_path)
    conductor = Conductor(str(tmp_path), provider=provider)
    assert conductor.build().success
    first = len(provider.prompts)
    again = conductor.build()
    assert len(provider.prompts) == first and sorted(again.specs_skipped) == ["a", "b", "c", "d"]
    assert all(d.llm_calls == 0 and d.attempts == 0 and d.input_tokens == d.output_tokens == 0
               for d in again.details.values())  # this run's cost: none
    mask = os.umask(0o022)
    os.umask(mask)
    modes = {oct(p.stat().st_mode & 0o777) for p in [*(tmp_path / "build").glob("*.py"), *(tmp_path / "src").glob("*")]}
    assert modes == {oct(0o666 & ~mask)}  # as any new file: not mkstemp's 0600
    # Unchanged specs are reused in one task run (not one each), and each is still on record.
    runs = wait_for_task_runs(again.flow_run_id, expected=1)
    assert [(t.name, t.state.name) for t in runs] == [("reuse-cached-specs", "Cached")]
    reused = read_artifacts(again.flow_run_id, key="reused-specs")[0].data
    assert sorted(row["spec"] for row in _rows(reused)) == ["a", "b", "c", "d"]
    assert all(re.fullmatch(rf"spechestra-{row['spec']}-[0-9a-f]{{32}}", row["cache_key"])
               for row in _rows(reused))  # the whole key (was its first 16 characters: the hash cut off)
    graph = read_artifacts(again.flow_run_id, key="build-graph")[0].data
    assert "| spec | outcome | needs |" in graph and "| b | cached | a |" in graph  # drawn by the UI, unlike Mermaid
    table = read_artifacts(again.flow_run_id, key="build-specs")[0].data
    assert {row["spec"]: row["state"] for row in _rows(table)} == dict.fromkeys("abcd", "cached")
    spec = tmp_path / "src" / "b.spec.md"
    spec.write_text(spec.read_text().replace("Return the result.", "Return the result unchanged."))
    edited = conductor.build()
    assert sorted(edited.specs_compiled) == ["b", "c"] and sorted(edited.specs_skipped) == ["a", "d"]
    runs = {t.name: t for t in wait_for_task_runs(edited.flow_run_id, expected=3)}
    assert sorted(runs) == ["b", "c", "reuse-cached-specs"]
    upstream = {ref.id for ref in runs["b"].task_inputs.get("wait_for", [])}
    assert upstream == {runs["reuse-cached-specs"].id}  # b's arrow comes from the reuse of a
    assert len(provider.prompts) == first + 4
    shutil.rmtree(tmp_path / "build")  # every file comes back from the cache, with zero calls
    restored = conductor.build()
    assert restored.success and len(provider.prompts) == first + 4
    assert sorted(p.name for p in (tmp_path / "build").glob("*.py")) == sorted(
        [f"{n}.py" for n in "abcd"] + [f"test_{n}.py" for n in "abcd"])
    forced = conductor.build(incremental=False)
    assert sorted(forced.specs_compiled) == ["a", "b", "c", "d"]


@pytest.mark.parametrize("seed", [7, 11])
def test_flaky_provider_retries_until_every_spec_builds(tmp_path, seed):
    flaky = FlakyProvider(_chain_project(tmp_path), rate=0.3, seed=seed)
    result = Conductor(str(tmp_path), provider=flaky, retry_delay=0.05).build()
    assert result.success and sorted(result.specs_compiled) == ["a", "b", "c", "d"]
    retried = sum(d.retries for d in result.details.values())
    assert flaky.faults > 0 and retried == flaky.faults
    table = read_artifacts(result.flow_run_id, key="build-specs")[0].data  # retries are in the run history
    assert sum(int(row["retries"]) for row in _rows(table)) == retried


def _rows(table):
    return json.loads(table) if isinstance(table, str) else table


def test_hard_failure_is_not_retried_and_names_the_provider_error(tmp_path):
    class Refusing:
        def generate(self, prompt, temperature=0.1, model=None):
            raise PermissionError("401 invalid API key")
    _chain_project(tmp_path)
    result = Conductor(str(tmp_path), provider=Refusing(), retry_delay=0.05).build(specs=["b"])
    assert result.specs_failed == ["a"] and result.specs_blocked == ["b"]
    assert "401 invalid API key" in result.errors["a"] and result.details["a"].retries == 0


def test_llm_calls_hold_a_slot_of_the_prefect_concurrency_limit(tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from spechestra.providers import LatencyProvider, MeteredProvider
    name = f"spechestra-test-llm-{tmp_path.name}"
    monkeypatch.setenv("SPECHESTRA_LLM_LIMIT", name)
    src = tmp_path / "src"
    src.mkdir()
    for n in "pqrs":
        (src / f"{n}.spec.md").write_text(kit.spec_markdown(n, description=f"Spec {n} marker-{n}."))
    inner = kit_build.build_provider({n: f"def {n}(v):\n    return v\n" for n in "pqrs"},
                                     {n: f"from {n} import {n}\n\ndef test_it():\n    assert {n}(1) == 1\n" for n in "pqrs"},
                                     {f"marker-{n}": n for n in "pqrs"})
    metered = MeteredProvider(LatencyProvider(inner, seconds=0.3, sigma=0.1))
    with get_client(sync_client=True) as c:
        c.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    try:
        result = Conductor(str(tmp_path), provider=metered).build(max_workers=4)
    finally:
        with get_client(sync_client=True) as c:
            c.delete_global_concurrency_limit_by_name(name)
    assert result.success and metered.meter.max_concurrency() == 1
    unlimited = MeteredProvider(LatencyProvider(inner, seconds=0.3, sigma=0.1))
    Conductor(str(tmp_path), provider=unlimited).build(max_workers=4, incremental=False)
    assert unlimited.meter.max_concurrency() > 1  # the same build without the limit runs calls in parallel


def test_a_stop_ends_a_wait_for_a_slot_of_the_limit(tmp_path):
    """Before: a call waiting for a slot of a full limit went on waiting through a Ctrl-C (up to
    SPECHESTRA_LLM_LIMIT_WAIT, 900 s), so the command gave up with its build's run still Running.
    Now the wait ends at the stop, with no call made."""
    import threading

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from spechestra import stopping
    from spechestra.core.budget import Budget
    from spechestra.core.llm_calls import guarded_call
    from spechestra.errors import Interrupted
    from spechestra.orchestration.limits import limit_slot, settle
    name = f"spechestra-test-stop-{tmp_path.name}"
    with get_client(sync_client=True) as c:
        c.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    outcome: dict = {}

    def wait_for_the_slot():
        try:
            outcome["answer"] = guarded_call(lambda: "called", Budget(), limit_slot(name))
        except Interrupted as exc:
            outcome["stopped"] = exc

    try:
        with limit_slot(name)():  # the limit's only slot, held by another spec's call
            waiting = threading.Thread(target=wait_for_the_slot)
            waiting.start()
            waiting.join(1.0)
            assert waiting.is_alive() and not outcome  # it waits for the slot
            stopping.request("Ctrl-C")
            waiting.join(30)
            assert not waiting.is_alive() and "stopped" in outcome, outcome
    finally:
        stopping.reset()
        settle()
        with get_client(sync_client=True) as c:
            c.delete_global_concurrency_limit_by_name(name)


def test_plan_problems_are_reported_before_any_llm_call(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.spec.md").write_text(kit.spec_markdown("x", deps=["y"]))
    (src / "y.spec.md").write_text(kit.spec_markdown("y", deps=["x"]))
    (src / "z.spec.md").write_text(kit.spec_markdown("z", deps=["ghost"]))
    provider = kit_build.build_provider({}, {}, {})
    conductor = SpecConductor(str(tmp_path), provider=provider)
    assert "ghost" in conductor.build(specs=["z"]).errors["z"]
    cyc = conductor.build(specs=["x"])
    assert not cyc.success and "dependency cycle" in cyc.errors["x"]
    assert provider.prompts == []


def test_empty_project(tmp_path):
    conductor = Conductor(str(tmp_path))
    assert conductor.verify().success and conductor.get_build_order() == []


def test_a_retried_build_run_never_marks_itself_crashed(tmp_path):
    """Before: the retry read its own id from build.lock (left by its first attempt) and set
    *itself* Crashed 0.1 s after starting, then built on while the UI showed Crashed."""
    from prefect.client.orchestration import get_client

    from spechestra.core.planning import Project
    from spechestra.orchestration import runtime
    from spechestra.orchestration.build import build

    kit_build.write_chain_project(tmp_path)
    attempts = []

    def first_attempt_dies(name, deps, layout, model, import_dirs, llm_limit=None):
        if not attempts:
            attempts.append(name)
            raise RuntimeError("the machine went away")  # after the lock was taken, like a crash
        return Project(str(tmp_path), runtime.config_for(str(tmp_path))).make_job(name, deps, layout, model,
                                                                               import_dirs, llm_limit)

    with runtime.using(provider=kit_build.chain_provider(), make_job=first_attempt_dies):
        state = build.with_options(retries=1, retry_delay_seconds=0)(project_dir=str(tmp_path), max_workers=1,
                                                                     return_state=True)
    assert attempts and state.is_completed()
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as c:
        names = [s.name for s in c.read_flow_run_states(run_id)]
    assert "AwaitingRetry" in names and "Crashed" not in names, names


@pytest.mark.corpus
def test_reference_specs_are_counted_as_reference_not_compiled(tmp_path):
    """Before: a project of SpecSoloist's two reference specs reported "2 compiled"."""
    corpus = CORPUS / "fasthtml_app"
    if not corpus.is_dir():
        pytest.skip(f"corpus not present at {CORPUS} (it exists in CI beside the repo)")
    (tmp_path / "src").mkdir()
    for name in ("fasthtml_interface", "fastlite_interface"):
        shutil.copy(corpus / f"{name}.spec.md", tmp_path / "src")
    provider = kit_build.math_provider()
    result = Conductor(str(tmp_path), provider=provider).build()
    assert result.success and result.specs_compiled == [], result
    assert sorted(result.specs_reference) == ["fasthtml_interface", "fastlite_interface"]
    assert result.counts() == "0 compiled, 2 reference, 0 cached, 0 failed, 0 blocked"
    assert sum(d.llm_calls for d in result.details.values()) == 0


def test_tests_that_use_anyio_still_get_its_plugin(tmp_path):
    """Spec test runs skip anyio's pytest plugin (0.18 s of each run) unless the tests name anyio:
    an async test marked `anyio` must still run, and pass (with the plugin off it is skipped as
    "async def functions are not natively supported", which reads as "ran no test")."""
    src = tmp_path / "src"
    src.mkdir()
    for n in ("plain", "waits"):
        (src / f"{n}.spec.md").write_text(kit.spec_markdown(n, description=f"Spec {n} marker-{n}."))
    code = {"plain": "def plain(v):\n    return v\n",
            "waits": "import anyio\n\n\nasync def waits(v):\n    await anyio.sleep(0)\n    return v\n"}
    tests = {"plain": "from plain import plain\n\n\ndef test_it():\n    assert plain(1) == 1\n",
             "waits": "import pytest\n\nfrom waits import waits\n\n\n@pytest.mark.anyio\nasync def test_it():\n"
                      "    assert await waits(2) == 2\n\n\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n"}
    provider = kit_build.build_provider(code, tests, {"marker-plain": "plain", "marker-waits": "waits"})
    result = Conductor(str(tmp_path), provider=provider).build()
    assert result.success and sorted(result.specs_compiled) == ["plain", "waits"], result.errors
    assert all(d.attempts == 1 for d in result.details.values())  # no fix was needed for either


def test_the_build_learns_which_specs_finished_without_asking_the_api(tmp_path, monkeypatch):
    """Before: each time a spec finished, the flow asked the API for the state of every other spec
    still running (a Prefect future knows its final state only once waited on), 5-40 ms each on
    the loop that starts the next specs. Now the runner's own done callbacks tell it."""
    from kit.runs import count_task_run_reads
    from spechestra.providers import LatencyProvider
    asked = count_task_run_reads(monkeypatch)
    kit_build.write_wide_project(tmp_path, "pqrstu")
    inner = kit_build.build_provider({n: f"def {n}(v):\n    return v\n" for n in "pqrstu"},
                                     {n: f"from {n} import {n}\n\ndef test_it():\n    assert {n}(1) == 1\n"
                                      for n in "pqrstu"}, {f"marker-{n}": n for n in "pqrstu"})
    result = Conductor(str(tmp_path), provider=LatencyProvider(inner, seconds=0.2, sigma=0.5)).build(max_workers=6)
    assert result.success and sorted(result.specs_compiled) == list("pqrstu"), result.errors
    assert asked == [], f"{len(asked)} task run(s) read from the API during the build"
