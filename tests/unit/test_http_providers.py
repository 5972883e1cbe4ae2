"""Our HTTP providers against a real loopback server speaking each wire format: the request on
the wire, token usage, and the retry decisions (429 Retry-After, 5xx backoff, 401, a hang)."""

import pytest

from kit.llm_server import ROUTES, Fault, LLMServer, provider_env
from spechestra.core import usage
from spechestra.core.llm_calls import SpecProvider
from spechestra.providers import LLMError, provider_from_name

pytestmark = pytest.mark.timeout(60)
KEY = "sk-loopback-test"


def echo(prompt: str) -> str:
    return f"answer to: {prompt}"


def provider(name, server, monkeypatch, **extra):
    for variable in ("SPECHESTRA_BASE_URL", "SPECSOLOIST_LLM_MODEL", "SPECSOLOIST_LLM_PROVIDER"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in {**provider_env(name, server, KEY), **extra}.items():
        monkeypatch.setenv(variable, value)
    return provider_from_name(name)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_each_wire_format_sends_the_request_and_reads_text_and_usage(name, monkeypatch):
    with LLMServer(echo, key=KEY if ROUTES[name][2] else None) as server:
        llm = provider(name, server, monkeypatch, SPECSOLOIST_LLM_MODEL="model-x")
        usage.start()
        assert llm.generate("write add(a, b)", temperature=0.3) == "answer to: write add(a, b)"
        told = usage.last()
    [request] = server.requests
    assert (told.input_tokens, told.output_tokens, told.estimated) == (server.usage["input"], server.usage["output"], False)
    assert told.total == 3 + 5  # the server's count (words), not our ~4-characters estimate
    body, headers = request.body, request.headers
    if name == "anthropic":
        assert request.path == "/v1/messages" and headers["x-api-key"] == KEY
        assert body["model"] == "model-x" and body["temperature"] == 0.3 and headers["anthropic-version"]
    elif name == "gemini":
        assert request.path == "/v1beta/models/model-x:generateContent" and headers["x-goog-api-key"] == KEY
        assert body["generationConfig"]["temperature"] == 0.3 and KEY not in request.path
    else:
        assert request.path == "/v1/chat/completions" and body["model"] == "model-x" and body["temperature"] == 0.3
        assert body["messages"] == [{"role": "user", "content": "write add(a, b)"}]
        assert headers.get("authorization") == (f"Bearer {KEY}" if name != "ollama" else None)


def counted(llm, **options):
    return SpecProvider(llm, [], delay=0.05, log=lambda line: None, **options)


def test_429_waits_as_long_as_retry_after_says(monkeypatch):
    with LLMServer(echo, key=KEY) as server:
        server.faults = [Fault(429, {"Retry-After": "2"})]
        calls = counted(provider("anthropic", server, monkeypatch))
        assert calls.generate("hello") == "answer to: hello"
    first, second = server.requests
    assert calls.retried == 1 and second.at - first.at >= 1.9  # backoff alone would be ~0.05 s


def test_500_and_503_are_retried_with_backoff(monkeypatch):
    with LLMServer(echo, key=KEY) as server:
        server.faults = [Fault(500), Fault(503)]
        calls = counted(provider("openai", server, monkeypatch))
        assert calls.generate("hello") == "answer to: hello"
    assert len(server.requests) == 3 and calls.retried == 2 and calls.calls == 3


def test_401_fails_at_once_in_one_line_naming_the_variable(monkeypatch):
    with LLMServer(echo, key="the-right-key") as server:
        calls = counted(provider("anthropic", server, monkeypatch))
        with pytest.raises(LLMError) as failure:
            calls.generate("hello")
    message = str(failure.value)
    assert len(server.requests) == 1 and calls.retried == 0  # no retry of a refused key
    assert "\n" not in message and "401" in message and "ANTHROPIC_API_KEY" in message and KEY not in message


def test_a_hanging_server_is_cut_by_the_timeout_and_retried(monkeypatch):
    with LLMServer(echo, key=KEY) as server:
        server.faults = [Fault(hang=5)]
        calls = counted(provider("gemini", server, monkeypatch, SPECHESTRA_LLM_TIMEOUT="1"))
        assert calls.generate("hello") == "answer to: hello"
    # Without the timeout the first request would simply answer after 5 s: 1 request, 0 retries.
    # (A loaded machine may time out a retry too, hence >=.)
    assert len(server.requests) >= 2 and calls.retried == len(server.requests) - 1


def test_missing_key_and_missing_base_url_are_named(monkeypatch):
    for variable in ("ANTHROPIC_API_KEY", "SPECHESTRA_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        provider_from_name("anthropic")
    with pytest.raises(ValueError, match="SPECHESTRA_BASE_URL"):
        provider_from_name("openai-compatible")
