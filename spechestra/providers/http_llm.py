"""Our LLM providers: one small HTTP client (httpx) for every documented provider name.

SpecSoloist 0.7's own `ollama` and `openrouter` fail on every call with the pydantic-ai it
installs, its `openai` speaks only the Responses API (so no OpenAI-compatible server works), and
its Gemini and Anthropic providers use fixed URLs and report no token usage. So each name maps
to a wire format (`wire.py`), a base URL setting and a key variable here, and every call:

- reports the tokens the reply says it used (`usage.report`);
- fails with a `ProviderError` (`LLMError`) that carries the HTTP status and `Retry-After`, so the caller's retry
  loop (`core.llm_calls`) waits as told on 429, backs off on 5xx, and stops at once on 401/403
  with one line naming the variable to fix;
- is cut after `SPECHESTRA_LLM_TIMEOUT` seconds without an answer (a transient fault, retried).
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Optional

from ..core import usage
from ..errors import ConfigurationError, ProviderError
from ..settings import settings
from . import wire


@dataclass(frozen=True)
class Service:
    wire: str                # a key of wire.FORMATS
    url_variable: Optional[str]  # the base URL's setting (its default is the service's address)
    key_variable: Optional[str]  # None: no key needed (a local server)
    model: str               # default model (SpecSoloist's defaults)

    @property
    def base_url(self) -> str:
        return settings.setting_of(self.url_variable).default if self.url_variable else ""


SERVICES = {
    "gemini": Service("gemini", "GEMINI_BASE_URL", "GEMINI_API_KEY", "gemini-2.0-flash"),
    "anthropic": Service("anthropic", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "claude-sonnet-4-20250514"),
    "openai": Service("openai", "OPENAI_BASE_URL", "OPENAI_API_KEY", "gpt-4o-mini"),
    "openrouter": Service("openai", "OPENROUTER_BASE_URL", "OPENROUTER_API_KEY", "anthropic/claude-3-haiku"),
    "ollama": Service("openai", "OLLAMA_BASE_URL", None, "llama3"),
    "openai-compatible": Service("openai", None, "SPECHESTRA_API_KEY", ""),
}
SERVICES["google"] = SERVICES["gemini"]


#: The name this module's callers know; the class is the error tree's.
LLMError = ProviderError


def parse_retry_after(value: Optional[str]) -> Optional[float]:
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


class HttpLLM:
    """An `LLMProvider` (`generate(prompt, temperature, model) -> str`) over HTTP."""

    def __init__(self, name: str, api_key: Optional[str] = None, model: Optional[str] = None,
                 base_url: Optional[str] = None, timeout: Optional[float] = None):
        if name not in SERVICES:
            raise ConfigurationError(f"unknown provider {name!r}: one of {', '.join(sorted(SERVICES))}",
                                     setting="SPECHESTRA_PROVIDER")
        import httpx  # deferred: listing or choosing a provider should not pay for the client
        service = SERVICES[name]
        self.name, self.service = name, service
        self.base_url = (base_url or settings.base_url
                         or (settings.of(service.url_variable) if service.url_variable else None) or "").rstrip("/")
        if not self.base_url:
            raise ConfigurationError(f"{name} needs a base URL: set SPECHESTRA_BASE_URL "
                                     "(e.g. http://localhost:8000/v1)", setting="SPECHESTRA_BASE_URL")
        if name == "ollama" and not self.base_url.endswith("/v1"):
            self.base_url += "/v1"  # OLLAMA_BASE_URL is the server's root, as SpecSoloist documents it
        self.key_variable = service.key_variable
        self.api_key = api_key or (settings.of(service.key_variable) if service.key_variable else None) or None
        if self.api_key is None and service.key_variable and name != "openai-compatible":
            raise ConfigurationError(f"{name} needs an API key: set {service.key_variable}, or name a Prefect "
                                     "Secret block holding it in SPECHESTRA_API_KEY_BLOCK", setting=service.key_variable)
        self.model = model or settings.llm_model or service.model
        if not self.model:
            raise ConfigurationError(f"{name} needs a model: set SPECSOLOIST_LLM_MODEL", setting="SPECSOLOIST_LLM_MODEL")
        self.timeout = timeout if timeout is not None else settings.llm_timeout
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
                           status_code=reply.status_code, retry_after=parse_retry_after(reply.headers.get("retry-after")))
        try:
            text, input_tokens, output_tokens = read_answer(reply.json())
        except (ValueError, wire.WireError) as exc:
            raise LLMError(f"{self.name}: unreadable reply from {url}: {exc}") from None
        usage.report(input_tokens, output_tokens, model=model)
        return text
