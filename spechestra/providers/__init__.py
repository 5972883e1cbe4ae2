"""LLM providers: real services over HTTP (`http_llm`), and deterministic ones for offline use.

`resolve_provider` (in `select`) is the one place a provider is chosen: an explicit object wins,
then the `SPECHESTRA_PROVIDER` setting, then the provider named in SpecSoloist's configuration.
"""

from .http_llm import HttpLLM, LLMError
from .meter import CallRecord, Meter, MeteredProvider
from .replay import RecordingProvider, ReplayMissError, ReplayProvider, prompt_key
from .scripted import (
                     FlakyProvider,
                     LatencyProvider,
                     ScriptedProvider,
                     TransientProviderError,
)
from .select import (
                     KEY_VARIABLES,
                     PROVIDER_NAMES,
                     LazyProvider,
                     identity_of,
                     provider_from_name,
                     resolve_provider,
)

__all__ = [
    "CallRecord", "HttpLLM", "LLMError", "KEY_VARIABLES", "LazyProvider", "Meter", "MeteredProvider", "RecordingProvider",
    "ReplayMissError", "ReplayProvider", "PROVIDER_NAMES", "prompt_key", "FlakyProvider",
    "LatencyProvider", "ScriptedProvider", "TransientProviderError", "identity_of", "provider_from_name",
    "resolve_provider",
]
