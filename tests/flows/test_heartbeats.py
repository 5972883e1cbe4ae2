"""Flows a command or the Python API runs send no heartbeats unless the user chose a frequency.
Nothing watches those runs (the crash automation watches deployment runs), and Prefect waits out
its heartbeat thread's 1 s sleep at every flow's end: 0.86 s of a 2.7 s cached build."""

import pytest

from kit import build as kit_build
from kit.runs import flow_run_events
from spechestra import Conductor

pytestmark = pytest.mark.timeout(180)
HEARTBEAT = "prefect.flow-run.heartbeat"


def _build(root):
    kit_build.write_wide_project(root, names="p")
    provider = kit_build.build_provider({"p": "def p(v):\n    return v\n"},
                                        {"p": "from p import p\n\ndef test_it():\n    assert p(1) == 1\n"},
                                        {"marker-p": "p"})
    result = Conductor(str(root), provider=provider).build()
    assert result.success, result
    return flow_run_events(result.flow_run_id)


def test_a_python_api_build_sends_no_heartbeat(tmp_path):
    """Before: one heartbeat per run (Prefect 3.9 defaults to 180 s, which the old code restored)."""
    assert HEARTBEAT not in _build(tmp_path)


def test_a_frequency_the_user_chose_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "180")
    assert HEARTBEAT in _build(tmp_path)


def test_a_build_builds_one_settings_object_for_its_changes(tmp_path, monkeypatch):
    """Each of Prefect's derived settings objects re-reads every source (30-45 ms of CPU); before, a
    call built one for its retry codes and another for quiet heartbeats (a pipeline five)."""
    from prefect.settings import Settings
    derived = []
    real = Settings.copy_with_update
    monkeypatch.setattr(Settings, "copy_with_update", lambda self, *a, **k: derived.append(k) or real(self, *a, **k))
    assert HEARTBEAT not in _build(tmp_path)
    assert len(derived) == 1, derived
