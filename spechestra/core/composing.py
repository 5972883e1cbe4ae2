"""The Composer's plain work: asking an LLM for an architecture and for one spec, and writing a
spec file so that an invalid or interrupted write never leaves a file behind.

The task and flow wrappers are in `orchestration.compose`; the public `Composer` calls these
through its `draft` and `write_spec` hooks.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Iterable, Literal

import yaml
from specsoloist.parser import SpecParser
from specsoloist.providers import LLMProvider

from ..errors import AnswerError, UsageError
from . import prompts
from .fileio import FILE_MODE, inside, temp_prefix
from .models import Architecture, ComponentDef

WriteStatus = Literal["created", "skipped", "failed"]


def draft_with(provider: LLMProvider, request: str, existing: list[str]) -> Architecture:
    """The LLM's architecture for `request`; ValueError when its answer is unusable."""
    answer = provider.generate(prompts.architecture_prompt(request, existing))
    return Architecture.from_yaml(extract_yaml(answer), known=existing)


def spec_with(provider: LLMProvider, component: ComponentDef, architecture: Architecture) -> str:
    """The LLM's full markdown for one component's spec."""
    return strip_fences(provider.generate(prompts.spec_prompt(component, architecture)))


def extract_yaml(answer: str) -> str:
    """The YAML inside the first fenced block of an answer, or the whole answer."""
    match = re.search(r"```(?:ya?ml)?[^\n]*\n(.*?)```", answer, re.DOTALL)
    text = match.group(1) if match else answer
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AnswerError(f"the answer is not valid YAML: {exc}") from None
    return text


def strip_fences(text: str) -> str:
    text = text.strip()
    match = re.match(r"^```[a-zA-Z]*\n(.*?)\n?```$", text, re.DOTALL)
    return match.group(1).strip() if match else text


def require_request(request) -> str:
    if not isinstance(request, str) or not request.strip():
        raise UsageError("the request is empty: describe the software you want in plain English")
    return request


def write_spec_file(parser: SpecParser, specs_dir: str, name: str, text: str) -> tuple[WriteStatus, str]:
    """Temp file in the specs dir -> SpecSoloist's validate_spec -> create the target if absent.

    Returns ("created", path), ("skipped", path) when the spec exists (never overwritten, even
    when another run creates it at the same moment: `os.link` creates or fails, atomically), or
    ("failed", why). The temp file is removed whatever happens.
    """
    target = inside(specs_dir, name + ".spec.md")
    if parser.spec_exists(name):
        return "skipped", str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target.name), suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text.rstrip() + "\n")
        verdict = parser.validate_spec(tmp)
        if not verdict["valid"]:
            return "failed", "invalid spec: " + "; ".join(verdict["errors"])
        os.chmod(tmp, FILE_MODE)  # the mode any new file gets (mkstemp's is 0600)
        try:
            os.link(tmp, target)  # create-if-absent in one step: a lost race is never an overwrite
        except FileExistsError:
            return "skipped", str(target)
        return "created", str(target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_created(paths: Iterable[str], specs_dir: str) -> int:
    """Delete spec files a rejected run created (only inside the specs dir)."""
    count = 0
    root = os.path.realpath(specs_dir)
    for path in paths:
        real = os.path.realpath(path)
        if real.startswith(root + os.sep) and os.path.exists(real):
            os.unlink(real)
            count += 1
    return count


def existing_specs(parser: SpecParser) -> list[str]:
    return sorted(name[: -len(".spec.md")] for name in parser.list_specs())


def as_spec_names(names: Iterable[str]) -> list[str]:
    return sorted({n[: -len(".spec.md")] if n.endswith(".spec.md") else n for n in names})


__all__ = ["draft_with", "spec_with", "extract_yaml", "strip_fences", "require_request",
           "write_spec_file", "remove_created", "existing_specs", "as_spec_names"]
