"""Performing workflow specs: one task run per step, real subprocesses, traces from run history."""

import shutil
import threading
from pathlib import Path

import pytest

import kit
from kit import build as kit_build
from spechestra import Conductor

pytestmark = pytest.mark.timeout(300)
from kit import CORPUS


@pytest.fixture(scope="module")
def built_math(tmp_path_factory, prefect_server):  # the server first: a module fixture runs before autouse ones
    if not (CORPUS / "math").is_dir():
        pytest.skip(f"corpus not present at {CORPUS} (it exists in CI beside the repo)")
    root = tmp_path_factory.mktemp("perform") / "math"
    shutil.copytree(CORPUS / "math", root)
    conductor = Conductor(str(root), provider=kit_build.math_provider())
    assert conductor.build().success
    return conductor


def test_math_workflow_runs_both_steps_and_traces_them(built_math):
    result = built_math.perform("math_workflow", {"n": 5}, auto_approve=True)
    assert result.success, result.error
    assert [s.name for s in result.steps] == ["compute_factorial", "check_prime"]
    assert result.steps[0].outputs == {"result": 120} and result.steps[1].inputs == {"n": 120}
    assert result.outputs == {"result": False}  # 120 is not prime
    assert result.declared_outputs == {"factorial_result": 120, "is_prime_result": False} and result.notes == []
    assert Path(result.trace_path).is_file() and ".spechestra/traces" in result.trace_path
    traced = [(s["name"], s["state"]) for s in result.trace["steps"]]
    assert traced == [("compute_factorial", "Completed"), ("check_prime", "Completed")]
    history = built_math.get_trace("math_workflow")
    assert history[0]["flow_run_id"] == result.flow_run_id  # newest first, from the Prefect API
    assert history[0]["steps"][1]["outputs"] == {"result": False} and history[0]["inputs"] == {"n": 5}


def test_checkpoint_callback_false_stops_with_one_step_done(built_math):
    asked = []
    result = built_math.perform("math_workflow", {"n": 3}, checkpoint_callback=lambda step: asked.append(step) or False)
    assert asked == ["check_prime"] and not result.success
    assert [s.name for s in result.steps] == ["compute_factorial"] and result.outputs == {"result": 6}
    assert "checkpoint" in result.error


@pytest.mark.timeout(120)
def test_without_a_callback_a_checkpoint_does_not_stop_a_python_caller(built_math):
    """Before: the README's own snippet paused at the checkpoint and waited up to 24 h."""
    result = built_math.perform("math_workflow", {"n": 5})
    assert result.success and [s.name for s in result.steps] == ["compute_factorial", "check_prime"]
    assert result.duration - result.work_duration < 0.5  # nobody was waited for


def test_checkpoint_pauses_for_input_and_resumes(built_math):
    from kit.runs import wait_for_flow_run_state
    from spechestra.orchestration.history import read_flow_runs
    from spechestra.orchestration.pauses import resume_with_input
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", built_math.perform("math_workflow", {"n": 4},
                                                                                    pause_at_checkpoints=True)),
                              daemon=True)
    thread.start()
    run_id = None
    for _ in range(300):
        runs = [r for r in read_flow_runs("perform", tag="workflow:math_workflow") if r.state and r.state.is_paused()]
        if runs:
            run_id = str(runs[0].id)
            break
        thread.join(0.2)
    assert run_id, "the perform run never paused at the checkpoint"
    wait_for_flow_run_state(run_id, lambda s: s.is_paused(), timeout=30)
    resume_with_input(run_id, {"decision": "approve", "comment": "looks right"})
    thread.join(120)
    assert box["r"].success and box["r"].outputs == {"result": False}
    assert box["r"].duration - box["r"].work_duration >= 0.5  # the pause is wall time, not work time


GOOD = "def run(value):\n    return {'result': value + 1}\n"
STEPS = "- name: one\n  spec: good\n  inputs:\n    value: inputs.value\n- name: two\n  spec: {second}\n  inputs:\n    value: one.outputs.result\n"


def test_a_raising_step_fails_with_its_error_and_keeps_partial_results(tmp_path):
    conductor = kit.workflow_project(tmp_path, STEPS.format(second="bad"),
                                  {"good": GOOD, "bad": "def run(value):\n    raise RuntimeError('bad input ' + str(value))\n"})
    result = conductor.perform("flow", {"value": 1})
    assert not result.success and [s.success for s in result.steps] == [True, False]
    assert "RuntimeError: bad input 2" in result.steps[1].error and result.outputs == {"result": 2}
    assert conductor.perform("flow", {"value": 5}).steps[0].outputs == {"result": 6}  # still healthy


def test_a_hanging_step_times_out_and_the_next_perform_works(tmp_path):
    conductor = kit.workflow_project(tmp_path, STEPS.format(second="slow"),
                                  {"good": GOOD, "slow": "import time\n\ndef run(value):\n    time.sleep(600)\n"})
    result = conductor.perform("flow", {"value": 1}, step_timeout=2)
    assert not result.success and "timed out after 2s" in result.steps[1].error
    (tmp_path / "build" / "slow.py").write_text("def run(value):\n    return {'result': value * 10}\n")
    again = conductor.perform("flow", {"value": 1}, step_timeout=5)  # rebuilt module: never served stale
    assert again.success and again.outputs == {"result": 20}


def test_a_stop_while_a_step_runs_ends_the_run_stopped_not_failed(tmp_path):
    """Before: a Ctrl-C during a step killed its process and the run reported the step failed
    ("step process died (exit code -15)") with "declared output ... was not produced" warnings.
    Now the step and the run are Stopped, saying by what."""
    from spechestra import stopping
    from spechestra.core.models import Outcome
    from spechestra.orchestration.history import read_flow_run
    conductor = kit.workflow_project(tmp_path, STEPS.format(second="slow"),
                                  {"good": GOOD, "slow": "import time\n\ndef run(value):\n    time.sleep(600)\n"})
    started = threading.Event()
    box: dict = {}

    def perform():
        box["result"] = conductor.perform("flow", {"value": 1}, step_timeout=120,
                                          progress=lambda name, status: name == "two" and status == "running"
                                          and started.set())

    thread = threading.Thread(target=perform)
    thread.start()
    try:
        assert started.wait(120), "step two never started"
        stopping.request("Ctrl-C")
        thread.join(60)
        assert not thread.is_alive(), "the perform did not end at the stop"
    finally:
        stopping.reset()
    result = box["result"]
    assert result.outcome is Outcome.STOPPED and result.error == "stopped (Ctrl-C) during step 'two'", result.error
    assert result.steps[1].error == "stopped (Ctrl-C) while it ran" and result.notes == []
    assert read_flow_run(result.flow_run_id).state.name == "Stopped"


def test_independent_steps_run_at_the_same_time(tmp_path, monkeypatch):
    """And the loop learns which step finished from the runner, not by asking the API about each
    step still running (before: one read per running step each time one finished)."""
    from kit.runs import count_task_run_reads
    slow = "import time\n\ndef run(value):\n    time.sleep(1.5)\n    return {'result': value}\n"
    steps = ("- name: left\n  spec: a\n  inputs:\n    value: inputs.value\n"
             "- name: right\n  spec: b\n  inputs:\n    value: inputs.value\n"
             "- name: join\n  spec: c\n  inputs:\n    value: left.outputs.result\n")
    conductor = kit.workflow_project(tmp_path, steps, {"a": slow, "b": slow, "c": GOOD})
    asked = count_task_run_reads(monkeypatch)
    result = conductor.perform("flow", {"value": 1})
    assert result.success and [s.name for s in result.steps] == ["left", "right", "join"]
    assert asked == [], f"{len(asked)} task run(s) read from the API during the run"
    left, right = result.trace["steps"][0], result.trace["steps"][1]
    assert {left["name"], right["name"]} == {"left", "right"}
    assert left["started"] < right["ended"] and right["started"] < left["ended"]  # overlapped


# Every module in these workflows records that it ran: a bad workflow must fail before any does.
# The record is a file beside the module, which a contained step may not write: these tests run
# their steps uncontained (containment has its own tests).
@pytest.fixture
def uncontained():
    from spechestra.settings import temporary_settings
    with temporary_settings(sandbox="off"):
        yield


RECORDING = "import pathlib\npathlib.Path(__file__).with_name('ran.txt').write_text('ran')\n\n" + GOOD


@pytest.mark.parametrize("steps, modules, message", [
    ("- name: one\n  spec: good\n  inputs:\n    value: ghost.outputs.result\n", {"good": RECORDING}, "unknown step 'ghost'"),
    ("- name: one\n  spec: good\n  inputs:\n    value: two.outputs.result\n- name: two\n  spec: good\n  inputs:\n    value: inputs.value\n",
     {"good": RECORDING}, "does not come before it"),
    ("- name: one\n  spec: good\n  inputs:\n    value: inputs.missing\n", {"good": RECORDING}, "'missing', which was not given"),
    ("- name: one\n  spec: good\n  inputs:\n    value: inputs.value\n- name: two\n  spec: good\n  inputs:\n    value: one.outputs.nope\n",
     {"good": RECORDING}, "declares only: result"),
    ("- name: one\n  spec: good\n  inputs:\n    value: inputs.value\n- name: two\n  spec: absent_module\n  inputs:\n    value: one.outputs.result\n",
     {"good": RECORDING, "absent_module": None}, "not found"),
])
def test_bad_workflows_fail_before_any_step_runs(tmp_path, steps, modules, message, uncontained):
    from spechestra.orchestration.history import read_flow_runs
    conductor = kit.workflow_project(tmp_path, steps, modules)
    runs_before = len(read_flow_runs("perform", limit=200))
    with pytest.raises(ValueError, match=message):
        conductor.perform("flow", {"value": 1})
    assert not (tmp_path / "build" / "ran.txt").exists()  # no step ran
    assert len(read_flow_runs("perform", limit=200)) == runs_before  # no perform flow run was even created


def test_the_ran_marker_would_be_seen(tmp_path, uncontained):
    """The control for the test above: a good workflow of the same modules does write ran.txt,
    and does create a flow run."""
    from spechestra.orchestration.history import read_flow_runs
    conductor = kit.workflow_project(tmp_path, STEPS.format(second="good"), {"good": RECORDING})
    runs_before = len(read_flow_runs("perform", limit=200))
    assert conductor.perform("flow", {"value": 1}).success
    assert (tmp_path / "build" / "ran.txt").read_text() == "ran"
    assert len(read_flow_runs("perform", limit=200)) == runs_before + 1


def test_only_workflow_specs_can_be_performed(tmp_path):
    conductor = kit.workflow_project(tmp_path, STEPS.format(second="good"), {"good": GOOD})
    with pytest.raises(ValueError, match="'good' is a 'function' spec"):
        conductor.perform("good", {})
    with pytest.raises(ValueError, match="no spec named 'nothing'"):
        conductor.perform("nothing", {})


DETACHED = '''import subprocess
import sys


def run(value):
    # A background process that outlives the step, holding the step's stdout (as `cmd &` does).
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    if value < 0:  # told to hang
        import time
        time.sleep(600)
    return {"result": value}
'''


def _ps_sleepers():
    import subprocess
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "time.sleep(600)" in line and "ps -eo" not in line]


@pytest.mark.timeout(120)
def test_a_step_that_hangs_with_a_detached_child_times_out_on_time(tmp_path):
    """Before: perform took 102-130 s against a 3 s step timeout (pipes held by the child)."""
    import time
    steps = "- name: one\n  spec: bg\n  inputs:\n    value: inputs.value\n"
    conductor = kit.workflow_project(tmp_path, steps, {"bg": DETACHED})
    started = time.monotonic()
    result = conductor.perform("flow", {"value": -1}, step_timeout=3)
    took = time.monotonic() - started
    assert not result.success and "timed out after 3s" in result.steps[0].error
    assert took < 60, took  # generous on a busy machine; before, over 100 s
    assert _ps_sleepers() == []  # nothing it started is left running


@pytest.mark.timeout(120)
def test_a_step_that_returns_is_a_success_and_what_it_left_is_killed(tmp_path):
    steps = "- name: one\n  spec: bg\n  inputs:\n    value: inputs.value\n"
    conductor = kit.workflow_project(tmp_path, steps, {"bg": DETACHED})
    result = conductor.perform("flow", {"value": 7}, step_timeout=60)
    assert result.success and result.outputs == {"result": 7}
    assert _ps_sleepers() == []


@pytest.mark.timeout(120)
def test_huge_and_nan_outputs_give_a_bounded_valid_trace(tmp_path):
    """Before: a 20 MB output wrote a 40 MB trace (and the CLI printed it for 150 s); NaN was
    written as bare NaN, which is not JSON."""
    import json
    code = "def run(value):\n    return {'big': 'x' * 20_000_000, 'nan': float('nan'), 'inf': float('inf')}\n"
    conductor = kit.workflow_project(tmp_path, "- name: one\n  spec: big\n  inputs:\n    value: inputs.value\n",
                                  {"big": code})
    result = conductor.perform("flow", {"value": 1})
    assert result.success and len(result.outputs["big"]) == 20_000_000  # the full value, from Python
    path = Path(result.trace_path)
    assert path.stat().st_size < 100_000
    trace = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in the trace"))
    assert trace["steps"][0]["outputs"]["truncated"].startswith("20,000,0")
    history = conductor.get_trace("flow")[0]  # the run history shows the same, bounded
    assert history["flow_run_id"] == result.flow_run_id and len(json.dumps(history)) < 100_000
    small = kit.workflow_project(tmp_path / "nan", "- name: one\n  spec: n\n  inputs:\n    value: inputs.value\n",
                              {"n": "def run(value):\n    return {'x': float('nan')}\n"}).perform("flow", {"value": 1})
    assert json.loads(Path(small.trace_path).read_text())["outputs"] == {"x": "NaN"}
