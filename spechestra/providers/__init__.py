"""LLM providers: SpecSoloist's real ones by config, and deterministic ones for offline use.

`resolve_provider` (in `select`) is the one place a provider is chosen: an explicit object wins,
then the `SPECHESTRA_PROVIDER` setting, then SpecSoloist's own configuration.
"""

from .meter import CallRecord, Meter, MeteredProvider
from .replay import RecordingProvider, ReplayMissError, ReplayProvider, prompt_key
from .scripted import FlakyProvider, LatencyProvider, ScriptedProvider, TransientProviderError
from .select import (KEY_VARIABLES, SPECSOLOIST_PROVIDERS, LazyProvider, identity_of, provider_from_name,
                     resolve_provider)

__all__ = [
    "CallRecord", "KEY_VARIABLES", "LazyProvider", "Meter", "MeteredProvider", "RecordingProvider",
    "ReplayMissError", "ReplayProvider", "SPECSOLOIST_PROVIDERS", "prompt_key", "FlakyProvider",
    "LatencyProvider", "ScriptedProvider", "TransientProviderError", "identity_of", "provider_from_name",
    "resolve_provider",
]
