"""Offline providers: replay by prompt hash, recording, scripted answers, meter, selection by name."""

import json

import pytest

from spechestra.providers import (
    Meter,
    MeteredProvider,
    RecordingProvider,
    ReplayMissError,
    ReplayProvider,
    ScriptedProvider,
    prompt_key,
    provider_from_name,
    resolve_provider,
)


def test_record_then_replay(tmp_path):
    scripted = ScriptedProvider([("hello", "world")])
    RecordingProvider(scripted, tmp_path).generate("say hello")
    stored = json.loads((tmp_path / f"{prompt_key('say hello')}.json").read_text())
    assert stored["prompt"] == "say hello" and stored["response"] == "world"
    assert ReplayProvider(tmp_path).generate("say hello") == "world"


def test_replay_miss_names_the_key_and_prompt(tmp_path):
    with pytest.raises(ReplayMissError) as info:
        ReplayProvider(tmp_path).generate("\n  Unrecorded question here\nmore")
    assert prompt_key("\n  Unrecorded question here\nmore") in str(info.value)
    assert "Unrecorded question here" in str(info.value)


def test_replay_directory_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="replay directory not found"):
        ReplayProvider(tmp_path / "nope")


def test_meter_records_calls_and_errors():
    meter = Meter()
    provider = MeteredProvider(ScriptedProvider([("ok", "fine")]), meter)
    assert provider.generate("ok?") == "fine"
    with pytest.raises(LookupError):
        provider.generate("unknown")
    assert meter.calls == 2
    assert meter.summary()["errors"] == 1
    assert meter.snapshot()[0].prompt_chars == 3 and meter.snapshot()[0].response_chars == 4


def test_selection_by_name(tmp_path, monkeypatch):
    assert isinstance(provider_from_name(f"replay:{tmp_path}"), ReplayProvider)
    provider = provider_from_name("kit:four_component_factory")
    assert isinstance(provider, ScriptedProvider)
    with pytest.raises(ValueError, match="cannot import"):
        provider_from_name("no_such_module_xyz:factory")
    with pytest.raises(ValueError, match="unknown provider"):
        provider_from_name("gpt-nonsense")
    monkeypatch.setenv("SPECHESTRA_PROVIDER", "kit:four_component_factory")
    assert isinstance(resolve_provider().inner, ScriptedProvider)
    explicit = ScriptedProvider([])
    assert resolve_provider(explicit).inner is explicit  # an explicit provider wins over the setting


def test_provider_names_take_our_http_providers_and_specsoloist_names_stay_reachable(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-real")
    monkeypatch.delenv("SPECSOLOIST_LLM_MODEL", raising=False)
    provider = provider_from_name("anthropic")
    assert type(provider).__name__ == "HttpLLM" and provider.model == "claude-sonnet-4-20250514"
    assert "sk-test" not in repr(provider)
    assert type(provider_from_name("specsoloist:anthropic")).__name__ == "AnthropicProvider"
