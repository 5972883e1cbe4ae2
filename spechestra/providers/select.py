"""Choosing a provider: an explicit object, a name (`SPECHESTRA_PROVIDER`), or the name in
SpecSoloist's configuration (`SPECSOLOIST_LLM_PROVIDER`), always metered. Nothing here reads Prefect: where a
key or name comes from a Prefect block or variable, the orchestration layer passes it in.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from dataclasses import replace
from typing import Callable, Optional

from specsoloist.config import SpecSoloistConfig

from ..errors import ConfigurationError
from ..settings import settings
from .http_llm import SERVICES, HttpLLM
from .meter import Meter, MeteredProvider
from .replay import ReplayProvider

PROVIDER_NAMES = tuple(SERVICES)
KEY_VARIABLES = {name: service.key_variable for name, service in SERVICES.items()}


def provider_from_name(name: str, config=None, api_key: Optional[str] = None, model: Optional[str] = None):
    """Build a provider from `replay:DIR`, a provider name (ours, over HTTP: see `http_llm`),
    `specsoloist:NAME` (SpecSoloist's own provider of that name), or `module:callable`.

    `api_key` / `model` (from Prefect blocks or variables) override the environment.
    """
    if name.startswith("replay:"):
        return ReplayProvider(name.split(":", 1)[1])
    if name in SERVICES:
        base = config if config is not None else SpecSoloistConfig.from_env()
        same = base.llm_provider == name
        return HttpLLM(name, api_key=api_key or (base.api_key if same else None), model=model or base.llm_model)
    if name.startswith("specsoloist:"):
        base = config if config is not None else SpecSoloistConfig.from_env()
        inner = name.split(":", 1)[1]
        key_var = KEY_VARIABLES.get(inner)
        key = api_key or (base.api_key if base.llm_provider == inner else settings.of(key_var) if key_var else None)
        return replace(base, llm_provider=inner, api_key=key, llm_model=model or base.llm_model).create_provider()
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigurationError(f"SPECHESTRA_PROVIDER={name!r}: cannot import {module_name!r}: {exc}",
                                     setting="SPECHESTRA_PROVIDER") from None
        factory = getattr(module, attr, None)
        if not callable(factory):
            raise ConfigurationError(f"SPECHESTRA_PROVIDER={name!r}: {module_name} has no callable {attr!r}",
                                     setting="SPECHESTRA_PROVIDER")
        provider = factory(api_key=api_key) if api_key and _takes(factory, "api_key") else factory()
        if not callable(getattr(provider, "generate", None)):
            raise ConfigurationError(f"SPECHESTRA_PROVIDER={name!r}: the factory returned {provider!r}, "
                                     "which has no generate(prompt, temperature, model) method", setting="SPECHESTRA_PROVIDER")
        return provider
    raise ConfigurationError(
        f"unknown provider {name!r}: use replay:DIR, one of {', '.join(sorted(SERVICES))}, "
        "specsoloist:NAME, or module:callable", setting="SPECHESTRA_PROVIDER")


def _takes(fn, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def resolve_provider(explicit=None, config=None, meter: Optional[Meter] = None, *, name: Optional[str] = None,
                     api_key: Optional[str] = None, model: Optional[str] = None,
                     label: Optional[Callable[[], str]] = None) -> MeteredProvider:
    """The provider to use, always wrapped in a meter: `explicit`, else `name` (default
    `SPECHESTRA_PROVIDER`), else SpecSoloist's configuration; `api_key`/`model` override."""
    extra = {"label": label} if label else {}
    if isinstance(explicit, MeteredProvider):
        return explicit
    if explicit is not None:
        return MeteredProvider(explicit, meter, **extra)
    name = name or settings.provider
    if name:
        return MeteredProvider(provider_from_name(name, config, api_key=api_key, model=model), meter, **extra)
    config = config if config is not None else SpecSoloistConfig.from_env()
    try:
        return MeteredProvider(provider_from_name(config.llm_provider, config, api_key=api_key, model=model), meter,
                               **extra)
    except ConfigurationError as exc:
        if settings.llm_provider:  # the user chose it: the message as it is
            raise
        raise ConfigurationError(f"{exc} ({config.llm_provider} is SpecSoloist's default provider, used because "
                                 "none is chosen: set SPECHESTRA_PROVIDER, see the README's 'Using a real LLM')",
                                 setting=exc.setting) from None


def identity_of(explicit=None, config=None, name: Optional[str] = None, model: Optional[str] = None) -> str:
    """Which provider and model a build would use, without making the provider (part of cache
    keys: another provider or model writes other code)."""
    if explicit is not None:
        inner = explicit
        while isinstance(inner, MeteredProvider):
            inner = inner.inner
        if isinstance(inner, LazyProvider):
            return inner.identity
        return f"object:{type(inner).__module__}.{type(inner).__qualname__}:{getattr(inner, 'model', '') or ''}"
    config = config if config is not None else SpecSoloistConfig.from_env()
    name = name or settings.provider
    chosen = name or config.llm_provider
    return f"{chosen}:{model or config.llm_model or ''}"


class LazyProvider:
    """A provider made on its first call: no key is needed, and no client is built, for work that
    turns out to need no LLM (a cached rebuild, a graph, a perform). `identity` says which
    provider and model it will be (see `identity_of`)."""

    def __init__(self, make: Callable[[], object], identity: str = ""):
        self._make, self._made, self._lock = make, None, threading.Lock()
        self.identity = identity

    def get(self):
        with self._lock:
            if self._made is None:
                self._made = self._make()
            return self._made

    def ready(self) -> None:
        """Made now: a missing key or setting raises its `ConfigurationError` before anything
        counts a call (no call was made; a build's budget and report must not say one was)."""
        self.get()

    def generate(self, prompt: str, temperature: float = 0.1, model: Optional[str] = None) -> str:
        return self.get().generate(prompt, temperature=temperature, model=model)
