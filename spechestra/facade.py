"""What the Composer and the Conductor share as facades: the project's provider (made on first
use, metered), which provider and model that is, the last flow run they started, and handing
all of it to the flows they call through the runtime."""

from __future__ import annotations

import contextlib
from functools import cached_property
from typing import Any, Optional

from specsoloist.providers import LLMProvider

from .orchestration import runtime
from .orchestration.prefect import local_api
from .providers import LazyProvider, Meter, MeteredProvider


class Facade:
    config: Any = None  # a SpecSoloistConfig, set by the subclass

    def _init_facade(self, provider: Optional[LLMProvider] = None) -> None:
        self.meter = Meter()
        self._provider_choice = provider
        self.last_flow_run_id: Optional[str] = None

    @cached_property
    def provider(self) -> MeteredProvider:
        """Made on first use, so no API key is needed until a call is made."""
        return runtime.provider_from_settings(self.config, self.meter, explicit=self._provider_choice)

    def llm_identity(self) -> str:
        """Which provider and model this object's calls go to (part of build cache keys)."""
        return runtime.provider_identity(self.config, self._provider_choice)

    @contextlib.contextmanager
    def _handover(self, **fields):
        """The runtime for the flows this object starts (its provider, config and hooks), on the
        local API (see `local_api`)."""
        with local_api(), runtime.using(provider=LazyProvider(lambda: self.provider, self.llm_identity()),
                                        on_run=self._started, config=self.config, **fields):
            yield

    def _started(self, flow_run_id: str) -> None:
        self.last_flow_run_id = flow_run_id
