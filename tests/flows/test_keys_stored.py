"""Issue 19, keys stored after all: whatever Spechestra writes or hands Prefect to store passes the
key redaction, and an answer that holds a known key is refused. Real builds and perform runs on
the test run's Prefect server; what was stored is read back from the disk, the server's database
(state messages, events, artifacts, logs) and Prefect's result storage (pickles, base64)."""

import base64
import json
import os
from pathlib import Path

import pytest

import kit
from kit import build as kit_build
from kit import workflow_project
from spechestra import Conductor
from spechestra.providers.meter import KEY_IN_ANSWER
from spechestra.settings import temporary_settings

pytestmark = pytest.mark.timeout(300)
KEY = "sk-stored-test-5f1e9a0c7b3d2e8f"


@pytest.fixture
def keyed(tmp_path, monkeypatch):
    """A user with a provider key in the environment, and that key also in a file generated code
    can read, sandboxed or not (build/ is readable to tests and steps; the sandbox hides /tmp,
    where the test's other files are)."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    keyfile = tmp_path / "project" / "build" / "notes.txt"
    keyfile.parent.mkdir(parents=True)
    keyfile.write_text(f"my key: {KEY}\n")
    return tmp_path / "project", keyfile


def _stored_database() -> list[Path]:
    """The shared test server's SQLite files (its database and write-ahead log)."""
    from prefect.settings import get_current_settings
    url = get_current_settings().server.database.connection_url.get_secret_value()
    database = Path(url.split("///", 1)[1])
    return [p for p in database.parent.glob(database.name + "*") if p.is_file()]


def _holders(roots: list[Path], keyfile: Path) -> list[str]:
    """Files under `roots` (but the user's own `keyfile`) that hold the key as it is, or inside a
    base64 field (Prefect's pickled results)."""
    needle, found = KEY.encode(), []
    for root in roots:
        for path in ([root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]):
            if path == keyfile:
                continue
            data = path.read_bytes()
            if needle in data or needle in _decoded_fields(data):
                found.append(str(path))
    return found


def _decoded_fields(data: bytes) -> bytes:
    try:
        record = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return b""
    blobs, todo = [], [record]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, str) and len(item) > 40:
            try:
                blobs.append(base64.b64decode(item, validate=False))
            except ValueError:
                pass
    return b"".join(blobs)


def _everywhere(project: Path) -> list[Path]:
    return [project / "build", project / ".spechestra", Path(os.environ["PREFECT_HOME"]), *_stored_database()]


@pytest.mark.parametrize("sandbox", ["auto", "off"])
def test_a_failing_test_that_prints_a_key_leaves_it_nowhere(keyed, sandbox):
    """Before: the terminal copy was redacted, but the key was stored as it is in the task run's
    state message, the events, the manifest and the failure's result (and went out in the fix
    prompt). The sandbox does not fix this one (the key is in a file tests may read): the
    redaction of what generated code prints does, with the sandbox on and off."""
    project, keyfile = keyed
    (project / "src").mkdir()
    (project / "src" / "thing.spec.md").write_text(kit.spec_markdown("thing", description="Spec thing marker-thing."))
    leaky_test = ("from thing import thing\n\ndef test_it():\n"
                  f"    print(open({str(keyfile)!r}).read())\n    assert thing(3) == 4\n")
    provider = kit_build.build_provider({"thing": "def thing(value):\n    return value\n"}, {"thing": leaky_test},
                                        {"marker-thing": "thing"}, fix=lambda p: "no fix")
    with temporary_settings(sandbox=sandbox):
        result = Conductor(str(project), provider=provider, max_fixes=1).build()
    assert result.specs_failed == ["thing"], result.errors
    fix_prompts = [p for p in provider.prompts if "tasked with fixing" in p]
    assert fix_prompts and "my key: [redacted]" in fix_prompts[0], "the test's output never showed the key"
    assert not any(KEY in p for p in provider.prompts), "the key went out in a prompt"
    assert KEY not in json.dumps(result.model_dump(mode="json"))
    assert _holders(_everywhere(project), keyfile) == []


def test_an_answer_holding_a_key_is_refused_and_stored_nowhere(keyed):
    """Before: generated code with the key inline was written to build/ and stored in the cache,
    the artifacts, the events and Prefect's result storage, with no warning."""
    project, keyfile = keyed
    (project / "src").mkdir()
    (project / "src" / "thing.spec.md").write_text(kit.spec_markdown("thing", description="Spec thing marker-thing."))
    provider = kit_build.build_provider({"thing": f"KEY = {KEY!r}\n\ndef thing(value):\n    return value\n"},
                                        {"thing": "from thing import thing\n\ndef test_it():\n    assert thing(3) == 3\n"},
                                        {"marker-thing": "thing"})
    result = Conductor(str(project), provider=provider).build()
    assert result.specs_failed == ["thing"] and KEY_IN_ANSWER in result.errors["thing"], result.errors
    assert result.llm_calls_made >= 1  # the answer was paid for: counted, never used
    assert not (project / "build" / "thing.py").exists()
    assert _holders(_everywhere(project), keyfile) == []


def test_a_step_output_holding_a_key_is_masked_in_the_trace_and_results(keyed):
    """Before: a step that returned what it read kept the key in the trace JSON, the step's and
    the perform's stored results and the run's artifacts. The caller still gets the step's true
    output (the next step, and a Python caller, work on what the step returned): only what is
    stored is masked."""
    project, keyfile = keyed
    step = f"def run(value):\n    return {{'result': open({str(keyfile)!r}).read()}}\n"
    conductor = workflow_project(project, "- name: one\n  spec: reader\n  inputs:\n    value: inputs.value\n",
                                 {"reader": step})
    result = conductor.perform("flow", {"value": 1})
    assert result.success and result.steps[0].outputs["result"] == f"my key: {KEY}\n", result.steps[0]
    trace = json.loads(Path(result.trace_path).read_text())
    assert "my key: [redacted]" in json.dumps(trace), trace
    assert _holders(_everywhere(project), keyfile) == []
