"""LLM providers: SpecSoloist's real ones by config, and deterministic ones for offline use.

`resolve_provider` is the one place a provider is chosen: an explicit object wins, then the
`SPECHESTRA_PROVIDER` setting, then SpecSoloist's own configuration (`SPECSOLOIST_LLM_PROVIDER`).
"""

from __future__ import annotations

import importlib
from typing import Optional

from .. import settings
from .meter import CallRecord, Meter, MeteredProvider
from .replay import RecordingProvider, ReplayMissError, ReplayProvider, prompt_key
from .scripted import FlakyProvider, LatencyProvider, ScriptedProvider, TransientProviderError

SPECSOLOIST_PROVIDERS = ("gemini", "anthropic", "openai", "openrouter", "ollama", "google")
KEY_VARIABLES = {"gemini": "GEMINI_API_KEY", "google": "GEMINI_API_KEY", "anthropic": "ANTHROPIC_API_KEY",
                 "openai": "OPENAI_API_KEY", "openrouter": "OPENROUTER_API_KEY", "ollama": None}

__all__ = [
    "CallRecord", "Meter", "MeteredProvider", "RecordingProvider", "ReplayMissError", "ReplayProvider",
    "prompt_key", "FlakyProvider", "LatencyProvider", "ScriptedProvider", "TransientProviderError",
    "provider_from_name", "resolve_provider",
]


def provider_from_name(name: str, config=None, api_key: Optional[str] = None, model: Optional[str] = None):
    """Build a provider from `replay:DIR`, a SpecSoloist provider name, or `module:callable`.

    `api_key` / `model` (from Prefect blocks or variables) override SpecSoloist's environment.
    """
    if name.startswith("replay:"):
        return ReplayProvider(name.split(":", 1)[1])
    if name in SPECSOLOIST_PROVIDERS:
        import os
        from dataclasses import replace
        from specsoloist.config import SpecSoloistConfig
        base = config if config is not None else SpecSoloistConfig.from_env()
        if base.llm_provider != name:
            # Same key variables SpecSoloist's from_env reads for each provider.
            key_var = KEY_VARIABLES.get(name)
            base = replace(base, llm_provider=name, api_key=os.environ.get(key_var) if key_var else None)
        if api_key or model:
            base = replace(base, api_key=api_key or base.api_key, llm_model=model or base.llm_model)
        return base.create_provider()
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"SPECHESTRA_PROVIDER={name!r}: cannot import {module_name!r}: {exc}") from None
        factory = getattr(module, attr, None)
        if not callable(factory):
            raise ValueError(f"SPECHESTRA_PROVIDER={name!r}: {module_name} has no callable {attr!r}")
        provider = factory(api_key=api_key) if api_key and _takes(factory, "api_key") else factory()
        if not callable(getattr(provider, "generate", None)):
            raise ValueError(f"SPECHESTRA_PROVIDER={name!r}: the factory returned {provider!r}, "
                             "which has no generate(prompt, temperature, model) method")
        return provider
    raise ValueError(
        f"unknown provider {name!r}: use replay:DIR, one of {', '.join(SPECSOLOIST_PROVIDERS)}, "
        "or module:callable")


def _takes(fn, parameter: str) -> bool:
    import inspect
    try:
        return parameter in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def resolve_provider(explicit=None, config=None, meter: Optional[Meter] = None) -> MeteredProvider:
    """The provider to use, always wrapped in a meter.

    Without an explicit one: `SPECHESTRA_PROVIDER` (or the Prefect variable `spechestra_provider`),
    with the key from the Prefect Secret block named by `SPECHESTRA_API_KEY_BLOCK` and the model
    from the variable `spechestra_model`, when set; else SpecSoloist's own configuration.
    """
    if isinstance(explicit, MeteredProvider):
        return explicit
    if explicit is not None:
        return MeteredProvider(explicit, meter)
    from ..prefect_api import secret_value, variable_value
    name = settings.provider_name() or variable_value("spechestra_provider")
    block = settings.api_key_block()
    api_key = secret_value(block) if block else None
    model = variable_value("spechestra_model")
    if name:
        return MeteredProvider(provider_from_name(name, config, api_key=api_key, model=model), meter)
    if config is None:
        from specsoloist.config import SpecSoloistConfig
        config = SpecSoloistConfig.from_env()
    if api_key or model:
        from dataclasses import replace
        config = replace(config, api_key=api_key or config.api_key, llm_model=model or config.llm_model)
    return MeteredProvider(config.create_provider(), meter)


class ProjectProvider:
    """Shared by the Composer and the Conductor: a project, its SpecSoloist config, and a metered
    provider created on first use (so no API key is needed until a call is made)."""

    def _init_project(self, project_dir: str, config=None, provider=None) -> None:
        import os
        from specsoloist.config import SpecSoloistConfig
        self.project_dir = os.path.abspath(project_dir)
        self.config = config if config is not None else SpecSoloistConfig.from_env(self.project_dir)
        self.meter = Meter()
        self._provider_choice = provider
        self._llm = None
        self.last_flow_run_id: Optional[str] = None

    @property
    def provider(self) -> MeteredProvider:
        if self._llm is None:
            self._llm = resolve_provider(self._provider_choice, self.config, self.meter)
        return self._llm
