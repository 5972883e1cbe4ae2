"""The Composer: a plain-English request becomes an architecture and `*.spec.md` files.

A thin facade: it holds the project, its SpecSoloist config and a metered provider, hands its
hooks (`draft`, `write_spec`, `prepare`) and the call's callbacks to the `compose` flow through
the runtime, and calls it. Subclass `BaseComposer` and override `draft` and/or `write_spec` to
change the creative steps while keeping the flow, reviews and run history.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Optional

from specsoloist.config import SpecSoloistConfig
from specsoloist.parser import SpecParser
from specsoloist.providers import LLMProvider

from .core import composing
from .core.models import Architecture, ComponentDef, CompositionResult, GeneratedSpecs
from .core.project import check_project_dir
from .core.reviews import ReviewCallback
from .facade import Facade
from .orchestration import compose as compose_flow
from .orchestration.prefect import current_flow_run_id, in_flow_run
from .orchestration.watched import watched

__all__ = ["Architecture", "BaseComposer", "ComponentDef", "Composer", "CompositionResult", "SpecComposer"]


class BaseComposer(Facade, ABC):
    """Extension point: override `draft` and/or `write_spec`; keep flows, reviews and run history."""

    def __init__(self, project_dir: str, config: Optional[SpecSoloistConfig] = None,
                 provider: Optional[LLMProvider] = None):
        self.project_dir = check_project_dir(project_dir)
        self.config = config if config is not None else SpecSoloistConfig.from_env(self.project_dir)
        self.parser = SpecParser(self.config.src_path)
        self._init_facade(provider)

    @property
    def specs_dir(self) -> str:
        return self.config.src_path

    def existing_specs(self) -> list[str]:
        return composing.existing_specs(self.parser)

    # --- the two creative steps ------------------------------------------------------------
    def prepare(self) -> None:
        """Fail fast on configuration (e.g. no provider) before any task runs."""

    @abstractmethod
    def draft(self, request: str, existing: list[str]) -> Architecture:
        """Draft an architecture; raise ValueError when the answer is unusable."""

    @abstractmethod
    def write_spec(self, component: ComponentDef, architecture: Architecture) -> str:
        """Return the full markdown of one component's spec."""

    # --- public API, run on Prefect ----------------------------------------------------------
    def draft_architecture(self, request: str, context: Optional[dict] = None) -> Architecture:
        """One task run. Unusable LLM output gives an empty architecture, never an exception."""
        composing.require_request(request)
        existing = composing.as_spec_names((context or {}).get("existing_specs", []))
        with self._runtime():
            return compose_flow.draft(request, existing, self.project_dir)

    def generate_specs(self, architecture: Architecture) -> GeneratedSpecs:
        """One task run per component, concurrent; existing specs are skipped, never overwritten."""
        with self._runtime():
            return compose_flow.generate(architecture, self.project_dir)

    def compose(self, request: str, auto_accept: bool = False, context: Optional[dict] = None,
                review_callback: Optional[ReviewCallback] = None, max_llm_calls: Optional[int] = None,
                max_tokens: Optional[int] = None) -> CompositionResult:
        """Draft, review, generate, review. Outside a flow run this starts the `compose` flow.
        `max_llm_calls` / `max_tokens` cap what it may spend (no call starts past them)."""
        composing.require_request(request)
        if in_flow_run():
            self.last_flow_run_id = current_flow_run_id()
        with self._runtime(review_callback=review_callback):
            if not in_flow_run():
                self.prepare()  # a provider that cannot work is one clear error here, not a failed flow run
            return watched(lambda: compose_flow.compose_in_run(request, self.project_dir, auto_accept, context,
                                                               max_llm_calls, max_tokens))

    def _runtime(self, **fields):
        return self._handover(draft=self.draft, write_spec=self.write_spec, prepare=self.prepare, **fields)


class Composer(BaseComposer):
    """Drafts and writes specs with the configured LLM provider."""

    def prepare(self) -> None:
        self.provider  # a misconfigured provider is an error, not an "unusable draft"

    def draft(self, request: str, existing: list[str]) -> Architecture:
        return composing.draft_with(self.provider, request, existing)

    def write_spec(self, component: ComponentDef, architecture: Architecture) -> str:
        return composing.spec_with(self.provider, component, architecture)


SpecComposer = Composer
