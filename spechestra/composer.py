"""The Composer: a plain-English request becomes an architecture and `*.spec.md` files.

`BaseComposer` owns the Prefect side (tasks, the compose flow, reviews, safe writes);
subclasses supply the two creative steps: drafting the architecture and writing one spec.
`Composer` does both through an LLM provider.
"""

from __future__ import annotations

import os
import re
import tempfile
from abc import ABC, abstractmethod
from typing import Any, Optional

import yaml
from specsoloist.config import SpecSoloistConfig
from specsoloist.parser import SpecParser

from . import prompts, review
from .fileio import inside
from .models import (Architecture, ComponentDef, CompositionResult, GeneratedSpecs,
                     ReviewRequest)
from .prefect_api import current_flow_run_id, in_flow_run, logger, sp_task, unmapped
from .providers import ProjectProvider

__all__ = ["Architecture", "BaseComposer", "ComponentDef", "Composer", "CompositionResult", "SpecComposer"]

MAX_EDIT_ROUNDS = 3


def _require_request(request: Any) -> str:
    if not isinstance(request, str) or not request.strip():
        raise ValueError("the request is empty: describe the software you want in plain English")
    return request


class BaseComposer(ProjectProvider, ABC):
    """Extension point: override `draft` and/or `write_spec`; keep flows, reviews and run history."""

    def __init__(self, project_dir: str, config: Optional[SpecSoloistConfig] = None, provider=None):
        self._init_project(project_dir, config, provider)
        self.parser = SpecParser(self.config.src_path)

    @property
    def specs_dir(self) -> str:
        return self.config.src_path

    def existing_specs(self) -> list[str]:
        return sorted(name[: -len(".spec.md")] for name in self.parser.list_specs())

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
        _require_request(request)
        existing = sorted(set((context or {}).get("existing_specs", [])))
        existing = [e[: -len(".spec.md")] if e.endswith(".spec.md") else e for e in existing]
        self.prepare()
        if not in_flow_run():
            from .compose_flow import run_in_own_flow
            return run_in_own_flow("draft-architecture", lambda: draft_task(self, request, existing))
        return draft_task(self, request, existing)

    def generate_specs(self, architecture: Architecture) -> GeneratedSpecs:
        """One task run per component, concurrent; existing specs are skipped, never overwritten."""
        if not in_flow_run():
            from .compose_flow import run_in_own_flow
            return run_in_own_flow("generate-specs", lambda: self.generate_specs(architecture))
        futures = write_spec_task.map(unmapped(self), architecture.components, unmapped(architecture))
        created, skipped, failed = [], [], {}
        for comp, future in zip(architecture.components, futures):
            try:
                status, detail = future.result()
            except Exception as exc:  # the provider failed for this component only
                status, detail = "failed", f"{type(exc).__name__}: {exc}"
            if status == "created":
                created.append(detail)
            elif status == "skipped":
                skipped.append(comp.name)
            else:
                failed[comp.name] = detail
        return GeneratedSpecs(created, skipped, failed)

    def compose(self, request: str, auto_accept: bool = False, context: Optional[dict] = None,
                review_callback: Optional[review.ReviewCallback] = None) -> CompositionResult:
        """Draft, review, generate, review. Outside a flow run this starts the `compose` flow."""
        _require_request(request)
        if not in_flow_run():
            from .compose_flow import run_composer
            return run_composer(self, request, auto_accept, context, review_callback)
        return self._compose_here(request, auto_accept, context, review_callback)

    # --- the composition itself (inside a flow run) ----------------------------------------
    def _compose_here(self, request, auto_accept, context, callback) -> CompositionResult:
        self.last_flow_run_id = current_flow_run_id()
        context = dict(context or {})
        existing = self.existing_specs()
        context["existing_specs"] = sorted(set(context.get("existing_specs", [])) | set(existing))
        arch = self.draft_architecture(request, context)
        if not arch.components:
            return self._result(arch, cancelled=True,
                                message=arch.description or "the draft has no components")
        arch, decision = self._review_architecture(arch, existing, auto_accept, callback)
        if not decision.approve:
            return self._result(arch, cancelled=True, message=_rejected("architecture", decision))
        specs = self.generate_specs(arch)
        decision = review.ask(ReviewRequest(stage="specs", architecture=arch, spec_paths=list(specs),
                                            failed=specs.failed), key="review-specs",
                              auto_accept=auto_accept, callback=callback)
        if not decision.approve:
            removed = remove_created(specs, self.specs_dir)
            logger().info("Removed %d spec(s) written by this run", removed)
            return self._result(arch, cancelled=True, skipped=specs.skipped, failed=specs.failed,
                                message=_rejected("specs", decision))
        message = "" if not specs.failed else f"{len(specs.failed)} spec(s) could not be written"
        return self._result(arch, spec_paths=list(specs), skipped=specs.skipped, failed=specs.failed,
                            ready_for_build=not specs.failed, message=message)

    def _review_architecture(self, arch, existing, auto_accept, callback):
        problem = ""
        for round_ in range(1, MAX_EDIT_ROUNDS + 1):
            req = ReviewRequest(stage="architecture", architecture=arch,
                                summary=f"Your last edit was not used: {problem}" if problem else "")
            decision = review.ask(req, key=f"review-architecture-{round_}", auto_accept=auto_accept,
                                  callback=callback)
            edited = (decision.architecture_yaml or "").strip()
            if not decision.approve or not edited or edited == arch.to_yaml().strip():
                return arch, decision
            try:
                return Architecture.from_yaml(edited, known=existing), decision
            except ValueError as exc:
                problem = str(exc)
                logger().warning("Edited architecture rejected: %s", problem)
                if auto_accept or callback is not None:
                    break
        return arch, decision.model_copy(update={"approve": False, "comment": f"invalid edit: {problem}"})

    def _result(self, arch, **fields) -> CompositionResult:
        return CompositionResult(architecture=arch, flow_run_id=self.last_flow_run_id, **fields)


def _rejected(stage: str, decision) -> str:
    return f"{stage} rejected in review" + (f": {decision.comment}" if decision.comment else "")


def remove_created(paths, specs_dir: str) -> int:
    """Delete spec files this run created (only inside the specs dir)."""
    count = 0
    root = os.path.realpath(specs_dir)
    for path in paths:
        real = os.path.realpath(path)
        if real.startswith(root + os.sep) and os.path.exists(real):
            os.unlink(real)
            count += 1
    return count


@sp_task(name="draft-architecture", task_run_name="draft-architecture")
def draft_task(composer: BaseComposer, request: str, existing: list[str]) -> Architecture:
    try:
        return composer.draft(request, existing)
    except ValueError as exc:
        logger().warning("Draft unusable: %s", exc)
        return Architecture(description=f"The drafted architecture was unusable: {exc}")


@sp_task(name="write-spec", task_run_name="{component.name}")
def write_spec_task(composer: BaseComposer, component: ComponentDef, architecture: Architecture):
    """Write one spec: LLM text -> temp file in the specs dir -> validate -> atomic rename."""
    target = inside(composer.specs_dir, component.name + ".spec.md")
    if composer.parser.spec_exists(component.name):
        logger().info("Spec %s exists; skipped (never overwritten)", component.name)
        return "skipped", str(target)
    text = composer.write_spec(component, architecture)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text.rstrip() + "\n")
        verdict = composer.parser.validate_spec(tmp)
        if not verdict["valid"]:
            return "failed", "invalid spec: " + "; ".join(verdict["errors"])
        if target.exists():
            return "skipped", str(target)
        os.replace(tmp, target)
        return "created", str(target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class Composer(BaseComposer):
    """Drafts and writes specs with the configured LLM provider."""

    def prepare(self) -> None:
        self.provider  # a misconfigured provider is an error, not an "unusable draft"

    def draft(self, request: str, existing: list[str]) -> Architecture:
        answer = self.provider.generate(prompts.architecture_prompt(request, existing))
        return Architecture.from_yaml(extract_yaml(answer), known=existing)

    def write_spec(self, component: ComponentDef, architecture: Architecture) -> str:
        return strip_fences(self.provider.generate(prompts.spec_prompt(component, architecture)))


def extract_yaml(answer: str) -> str:
    """The YAML inside the first fenced block of an answer, or the whole answer."""
    match = re.search(r"```(?:ya?ml)?[^\n]*\n(.*?)```", answer, re.DOTALL)
    text = match.group(1) if match else answer
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"the answer is not valid YAML: {exc}") from None
    return text


def strip_fences(text: str) -> str:
    text = text.strip()
    match = re.match(r"^```[a-zA-Z]*\n(.*?)\n?```$", text, re.DOTALL)
    return match.group(1).strip() if match else text


SpecComposer = Composer
