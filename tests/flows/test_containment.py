"""Generated code that tries to leave (issue: contain generated code). Real builds, real
bubblewrap, a real listener on 127.0.0.1: at import and at test time the code reads the provider
key and sends it out, calls the Prefect API, writes in $HOME, the project root and src/."""

import tempfile
import uuid
from pathlib import Path

import pytest

from kit import spec_markdown, workflow_project
from kit.hostile import STEP, Listener, fill, hostile_provider
from spechestra import Conductor
from spechestra.processes import sandbox
from spechestra.settings import prefect_value, temporary_settings

KEY = "sk-hostile-test-0123456789abcdef"
SHARED_TMP = Path(tempfile.gettempdir()) / f"spechestra-hostile-{uuid.uuid4().hex[:8]}"  # the machine's /tmp
needs_bwrap = pytest.mark.skipif(sandbox.unavailable() is not None,
                                 reason=f"bubblewrap cannot run here: {sandbox.unavailable()}")


@pytest.fixture
def victim(tmp_path, monkeypatch):
    """A user with a key in the environment and a home of their own (a temp dir, for safety)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    yield home, project
    for left in Path(tempfile.gettempdir()).glob(SHARED_TMP.name + "*"):
        left.unlink()


def _spec(project, network=False):
    text = spec_markdown("thing", description="Spec thing marker-thing.")
    if network:
        text = text.replace("status: draft", "status: draft\nnetwork: true", 1)
    (project / "src" / "thing.spec.md").write_text(text)


def _hostile_build(victim, quiet, network=False):
    """The build of one hostile spec: (its result, what reached the listener, what it left behind)."""
    home, project = victim
    _spec(project, network)
    with Listener() as listener:
        result = _build(home, project, listener, quiet)
    return result, listener.received, _left_behind(home, project)


def _build(home, project, listener, quiet):
    provider = hostile_provider(listener.port, prefect_value("PREFECT_API_URL") or "http://127.0.0.1:4200/api",
                                str(home), str(project), quiet, str(SHARED_TMP))
    return Conductor(str(project), provider=provider).build()


def _left_behind(home, project):
    return sorted([p.name for p in home.iterdir()] + [p.name for p in project.glob("hostile-*")]
                  + [p.name for p in (project / "src").glob("evil_*")]
                  + [p.name for p in SHARED_TMP.parent.glob(SHARED_TMP.name + "*")])


@needs_bwrap
def test_code_that_hides_its_attempts_gets_nothing_out(victim):
    result, received, left = _hostile_build(victim, quiet=True)
    assert result.success, result.errors  # its own test passes: only what it reached tells
    assert received == []  # no key, nothing at all reached the listener
    assert left == []
    assert result.contained == "bubblewrap, no network"


@needs_bwrap
def test_refused_attempts_are_shown_when_they_fail_the_tests(victim):
    result, received, left = _hostile_build(victim, quiet=False)
    assert not result.success and received == [] and left == []
    notes = result.details["thing"].notes
    assert any("refused a write outside the build" in n and "hostile-import" in n for n in notes), notes
    assert any("connection was refused" in n for n in notes), notes


def test_without_the_sandbox_the_code_still_never_sees_a_key_or_prefect(victim):
    with temporary_settings(sandbox="off"):
        result, received, _ = _hostile_build(victim, quiet=True)
    assert result.success and result.contained.startswith("NOT sandboxed")
    assert received, "uncontained, the code reaches the listener (the control for the tests above)"
    for sent in received:
        assert sent["key"] == "" and not [n for n in sent["env"] if n.startswith(("PREFECT_", "OPENAI", "SPECHESTRA_"))]


@needs_bwrap
def test_a_spec_that_asks_for_the_network_gets_it_and_the_build_says_so(victim):
    result, received, left = _hostile_build(victim, quiet=True, network=True)
    assert result.success and "network allowed for thing" in result.contained
    assert received and all(sent["key"] == "" for sent in received)
    assert left == []  # the file system stays contained


def test_required_without_bubblewrap_refuses_before_anything_is_paid(victim, monkeypatch):
    home, project = victim
    _spec(project)
    monkeypatch.setenv("PATH", "/nonexistent")
    sandbox.unavailable.cache_clear()
    try:
        with Listener() as listener, temporary_settings(sandbox="required"):
            provider = hostile_provider(listener.port, "http://127.0.0.1:1", str(home), str(project), True,
                                        str(SHARED_TMP))
            result = Conductor(str(project), provider=provider).build()
    finally:
        sandbox.unavailable.cache_clear()
    assert not result.success and "SPECHESTRA_SANDBOX=required" in (result.problem or "")
    assert provider.prompts == []  # no LLM call was paid for
    assert listener.received == [] and _left_behind(home, project) == []


def _hostile_step(victim, network=False):
    """Perform a one-step workflow whose step tries to leave: (its result, what the listener heard)."""
    home, project = victim
    with Listener() as listener:
        step = STEP.format(**fill(listener.port, prefect_value("PREFECT_API_URL") or "http://127.0.0.1:1",
                                  str(home), str(project), True, str(SHARED_TMP)))
        conductor = workflow_project(project, "- name: one\n  spec: evil\n  inputs:\n    value: inputs.value\n",
                                     {"evil": step})
        if network:
            spec = project / "src" / "evil.spec.md"
            spec.write_text(spec.read_text().replace("status: draft", "status: draft\nnetwork: true", 1))
        return conductor.perform("flow", {"value": 1}), listener.received


@needs_bwrap
def test_a_hostile_perform_step_is_contained_and_the_workflow_still_runs(victim):
    result, received = _hostile_step(victim)
    assert result.success and result.outputs == {"result": 2}, result.error
    assert received == [] and _left_behind(*victim) == []


@needs_bwrap
def test_a_step_whose_spec_asks_for_the_network_gets_it(victim):
    result, received = _hostile_step(victim, network=True)
    assert result.success and received and all(sent["key"] == "" for sent in received)
    assert _left_behind(*victim) == []


RUNAWAY = {
    "fork loop": ("import os, time\nfor _ in range(500):\n    if os.fork() == 0:\n        time.sleep(60)\n"
                  "        os._exit(0)\n", dict(sandbox_processes=30), "more than 30 processes at once"),
    "memory hog": ("hog = bytearray(3 * 2**30)\n", dict(sandbox_memory_mb=300), "MemoryError"),
    "gigabytes of output": ("import sys\nfor _ in range(20_000):\n    sys.stdout.write('x' * 100_000)\n",
                            dict(sandbox_output_mb=2), "more than 2 MiB of output"),
}


@pytest.mark.parametrize("case", sorted(RUNAWAY))
def test_runaway_generated_tests_are_stopped_with_the_reason_and_honest_specs_build(project, case):
    from kit.build import build_provider
    body, limits, reason = RUNAWAY[case]
    for name in ("honest", "runaway"):
        (project / "src" / f"{name}.spec.md").write_text(spec_markdown(name, description=f"Spec {name} marker-{name}."))
    code = {n: f"def {n}(value):\n    return value\n" for n in ("honest", "runaway")}
    tests = {"honest": "from honest import honest\n\ndef test_it():\n    assert honest(3) == 3\n",
             "runaway": "from runaway import runaway\n\ndef test_it():\n" + "".join(
                 f"    {line}\n" for line in body.splitlines()) + "    assert runaway(3) == 3\n"}
    provider = build_provider(code, tests, {"marker-honest": "honest", "marker-runaway": "runaway"})
    with temporary_settings(**limits):
        result = Conductor(str(project), provider=provider, max_fixes=0).build()
    assert result.specs_compiled == ["honest"] and result.specs_failed == ["runaway"], result.errors
    assert reason in result.details["runaway"].error, result.details["runaway"].error[-1500:]


@pytest.mark.parametrize("case", sorted(RUNAWAY))
def test_a_runaway_perform_step_is_stopped_with_the_reason(tmp_path, case):
    body, limits, reason = RUNAWAY[case]
    step = "def run(value):\n" + "".join(f"    {line}\n" for line in body.splitlines()) + "    return {'result': 1}\n"
    conductor = workflow_project(tmp_path, "- name: one\n  spec: wild\n  inputs:\n    value: inputs.value\n",
                                 {"wild": step})
    with temporary_settings(**limits):
        result = conductor.perform("flow", {"value": 1})
    assert not result.success and reason in (result.steps[0].error or ""), result.steps[0].error
