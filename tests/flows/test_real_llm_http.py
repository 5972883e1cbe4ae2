"""Compose, build and perform through each provider name, over real HTTP to a loopback server
that speaks the provider's wire format (no `generate` is replaced): the same client code a user's
run uses, with token usage read from the replies."""

import json

import pytest

from kit import build as kit_build
from kit.llm_server import ROUTES, LLMServer, provider_env
from spechestra.orchestration.history import read_artifacts
from spechestra.pipeline import run_pipeline

pytestmark = pytest.mark.timeout(300)
KEY = "sk-loopback-e2e"
PRICES = {"claude-sonnet-4-20250514": {"input": 3, "output": 15}}  # US dollars per million tokens


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_the_whole_pipeline_over_each_wire_format(name, tmp_path, monkeypatch):
    answers = kit_build.pipeline_provider()
    with LLMServer(lambda prompt: answers.generate(prompt), key=KEY if ROUTES[name][2] else None) as server:
        for variable in ("SPECHESTRA_BASE_URL", "SPECSOLOIST_LLM_MODEL", "SPECSOLOIST_LLM_PROVIDER"):
            monkeypatch.delenv(variable, raising=False)
        for variable, value in provider_env(name, server, KEY).items():
            monkeypatch.setenv(variable, value)
        monkeypatch.setenv("SPECHESTRA_PRICES", json.dumps(PRICES))
        result = run_pipeline("A number doubler", str(tmp_path), auto_accept=True, inputs={"value": 21})
    assert result.success, result.message
    assert result.perform.outputs == {"result": 42}
    assert sorted(result.build.specs_compiled) == ["double", "twice"]
    # 1 architecture + 2 specs + 2 x (code, tests): every one a real request
    assert len(server.requests) == 7
    assert result.llm["calls"] == 7 and result.llm["tokens_estimated"] is False
    assert (result.llm["input_tokens"], result.llm["output_tokens"]) == (server.usage["input"], server.usage["output"])
    built = result.build.details.values()
    assert all(d.input_tokens > 0 and d.output_tokens > 0 and not d.tokens_estimated for d in built)
    table = read_artifacts(result.build.flow_run_id, key="build-specs")[0].data
    rows = {row["spec"]: row for row in (json.loads(table) if isinstance(table, str) else table)}
    assert {n: (r["input_tokens"], r["output_tokens"], r["tokens"]) for n, r in rows.items()} == {
        d.name: (d.input_tokens, d.output_tokens, "reported") for d in built}
    if name == "anthropic":  # the only model with a price here: its default model
        for d in built:
            assert d.cost_usd == pytest.approx((d.input_tokens * 3 + d.output_tokens * 15) / 1e6)
        assert result.llm["cost_usd"] == pytest.approx(
            (server.usage["input"] * 3 + server.usage["output"] * 15) / 1e6)
    else:
        assert all(d.cost_usd is None for d in built) and result.llm["cost_usd"] is None  # no price: no guess
