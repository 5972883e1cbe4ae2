"""Our LLM providers: one small HTTP client (httpx) for every documented provider name.

SpecSoloist 0.7's own `ollama` and `openrouter` fail on every call with the pydantic-ai it
installs, its `openai` speaks only the Responses API (so no OpenAI-compatible server works), and
its Gemini and Anthropic providers use fixed URLs and report no token usage. So each name maps
to a wire format (`wire.py`), a base URL setting and a key variable here, and every call:

- reports the tokens the reply says it used (`usage.report`);
- fails with an `LLMError` that carries the HTTP status and `Retry-After`, so the caller's retry
  loop (`core.llm_calls`) waits as told on 429, backs off on 5xx, and stops at once on 401/403
  with one line naming the variable to fix;
- is cut after `SPECHESTRA_LLM_TIMEOUT` seconds without an answer (a transient fault, retried).
"""

from __future__ import annotations

import email.utils
import os
import time
from dataclasses import dataclass
from typing import Optional

from ..core import usage
from . import wire


@dataclass(frozen=True)
class Service:
    wire: str                # a key of wire.FORMATS
    base_url: str            # default; `SPECHESTRA_BASE_URL` or `url_variable` override it
    url_variable: Optional[str]
    key_variable: Optional[str]  # None: no key needed (a local server)
    model: str               # default model (SpecSoloist's defaults)


SERVICES = {
    "gemini": Service("gemini", "https://generativelanguage.googleapis.com", "GEMINI_BASE_URL", "GEMINI_API_KEY",
                      "gemini-2.0-flash"),
    "anthropic": Service("anthropic", "https://api.anthropic.com", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY",
                         "claude-sonnet-4-20250514"),
    "openai": Service("openai", "https://api.openai.com/v1", "OPENAI_BASE_URL", "OPENAI_API_KEY", "gpt-4o-mini"),
    "openrouter": Service("openai", "https://openrouter.ai/api/v1", "OPENROUTER_BASE_URL", "OPENROUTER_API_KEY",
                          "anthropic/claude-3-haiku"),
    "ollama": Service("openai", "http://localhost:11434", "OLLAMA_BASE_URL", None, "llama3"),
    "openai-compatible": Service("openai", "", None, "SPECHESTRA_API_KEY", ""),
}
SERVICES["google"] = SERVICES["gemini"]


class LLMError(RuntimeError):
    """A failed call. `status_code` and `transient` drive the retry decision; `retry_after` (seconds)
    is the server's own wait."""

    def __init__(self, message: str, status_code: Optional[int] = None, transient: bool = False,
                 retry_after: Optional[float] = None):
        super().__init__(message)
        self.status_code, self.transient, self.retry_after = status_code, transient, retry_after


class ConfigurationError(ValueError):
    """A provider that cannot be made as configured (no key, no base URL): said before any call."""


def retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a Retry-After header: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def timeout_setting() -> float:
    raw = os.environ.get("SPECHESTRA_LLM_TIMEOUT", "").strip()
    try:
        return float(raw) if raw else 300.0
    except ValueError:
        raise ConfigurationError(f"SPECHESTRA_LLM_TIMEOUT must be a number of seconds, got {raw!r}") from None


class HttpLLM:
    """An `LLMProvider` (`generate(prompt, temperature, model) -> str`) over HTTP."""

    def __init__(self, name: str, api_key: Optional[str] = None, model: Optional[str] = None,
                 base_url: Optional[str] = None, timeout: Optional[float] = None):
        if name not in SERVICES:
            raise ConfigurationError(f"unknown provider {name!r}: one of {', '.join(sorted(SERVICES))}")
        import httpx  # deferred: listing or choosing a provider should not pay for the client
        service = SERVICES[name]
        self.name, self.service = name, service
        self.base_url = (base_url or os.environ.get("SPECHESTRA_BASE_URL")
                         or (os.environ.get(service.url_variable) if service.url_variable else None)
                         or service.base_url).rstrip("/")
        if not self.base_url:
            raise ConfigurationError(f"{name} needs a base URL: set SPECHESTRA_BASE_URL "
                                     "(e.g. http://localhost:8000/v1)")
        if name == "ollama" and not self.base_url.endswith("/v1"):
            self.base_url += "/v1"  # OLLAMA_BASE_URL is the server's root, as SpecSoloist documents it
        self.key_variable = service.key_variable
        self.api_key = api_key or (os.environ.get(service.key_variable) if service.key_variable else None) or None
        if self.api_key is None and service.key_variable and name != "openai-compatible":
            raise ConfigurationError(f"{name} needs an API key: set {service.key_variable}, or name a Prefect "
                                     "Secret block holding it in SPECHESTRA_API_KEY_BLOCK")
        self.model = model or os.environ.get("SPECSOLOIST_LLM_MODEL") or service.model
        if not self.model:
            raise ConfigurationError(f"{name} needs a model: set SPECSOLOIST_LLM_MODEL")
        self.timeout = timeout if timeout is not None else timeout_setting()
        self._httpx = httpx
        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)))

    def __repr__(self) -> str:  # never the key
        return f"HttpLLM({self.name!r}, model={self.model!r}, base_url={self.base_url!r})"

    def __getstate__(self):  # a copy for another process builds its own client
        return {"name": self.name, "api_key": self.api_key, "model": self.model, "base_url": self.base_url,
                "timeout": self.timeout}

    def __setstate__(self, state):
        self.__init__(**state)

    def generate(self, prompt: str, temperature: float = 0.1, model: Optional[str] = None) -> str:
        model = model or self.model
        build_request, read_answer = wire.FORMATS[self.service.wire]
        path, headers, body = build_request(model, prompt, temperature, self.api_key)
        url = self.base_url + path
        try:
            reply = self._client.post(url, json=body, headers=headers)
        except self._httpx.TimeoutException:
            raise LLMError(f"{self.name}: no answer from {url} within {self.timeout:g}s (SPECHESTRA_LLM_TIMEOUT)",
                           transient=True) from None
        except self._httpx.TransportError as exc:
            raise LLMError(f"{self.name}: cannot reach {url}: {type(exc).__name__}: {exc}", transient=True) from None
        if reply.status_code in (401, 403):
            where = (f"{self.key_variable} (or the Secret block named by SPECHESTRA_API_KEY_BLOCK)"
                     if self.key_variable else "the server's access settings")
            raise LLMError(f"{self.name}: {reply.status_code} {reply.reason_phrase} from {url}: the key was refused; "
                           f"check {where}", status_code=reply.status_code)
        if reply.status_code >= 400:
            detail = " ".join(reply.text.split())[:300]
            raise LLMError(f"{self.name}: {reply.status_code} {reply.reason_phrase} from {url}: {detail}",
                           status_code=reply.status_code, retry_after=retry_after(reply.headers.get("retry-after")))
        try:
            text, input_tokens, output_tokens = read_answer(reply.json())
        except (ValueError, wire.WireError) as exc:
            raise LLMError(f"{self.name}: unreadable reply from {url}: {exc}") from None
        usage.report(input_tokens, output_tokens, model=model)
        return text
