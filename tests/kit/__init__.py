"""Test kit: deterministic providers and spec text for tests (no LLM anywhere)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from spechestra.providers import ScriptedProvider

#: SpecSoloist's example projects, beside the repository in CI (`../shared/corpus`).
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def spec_markdown(name: str, type_: str = "function", deps=(), description: str = "") -> str:
    """A spec that passes SpecSoloist's validate_spec for function/bundle/workflow types."""
    front = {"name": name.split("/")[-1], "type": type_, "status": "draft"}
    if deps:
        front["dependencies"] = list(deps)
    body = [f"# Overview\n{description or f'The {name} component.'}\n",
            "# Interface\n```yaml:schema\ninputs:\n  value:\n    type: integer\n"
            "outputs:\n  result:\n    type: integer\n```\n",
            "# Behavior\n- FR-01: Return the result.\n"]
    if type_ == "bundle":
        body.append("```yaml:functions\nrun:\n  inputs: {value: integer}\n  outputs: {result: integer}\n"
                    "  behavior: returns value\n```\n")
    if type_ == "workflow":
        first = deps[0] if deps else "x"
        body.append(f"# Steps\n```yaml:steps\n- name: first\n  spec: {first}\n  inputs:\n"
                    "    value: inputs.value\n```\n")
    return "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n" + "\n".join(body)


def architecture(components: list[dict], description: str = "Test architecture") -> str:
    return yaml.safe_dump({"description": description, "components": components}, sort_keys=False)


FOUR = [
    {"name": "parse_csv", "type": "function", "description": "Parse CSV text", "dependencies": []},
    {"name": "stats", "type": "function", "description": "Mean and median", "dependencies": ["parse_csv"]},
    {"name": "formatting/report", "type": "function", "description": "Format a report",
     "dependencies": ["stats"]},
    {"name": "pipeline", "type": "workflow", "description": "Run it all",
     "dependencies": ["parse_csv", "stats", "formatting/report"]},
]


def _spec_from_prompt(prompt: str) -> str:
    name = re.search(r"^Name: (.+)$", prompt, re.M).group(1).strip()
    type_ = re.search(r"^Type: (.+)$", prompt, re.M).group(1).strip()
    deps = re.search(r"^Dependencies: (.+)$", prompt, re.M).group(1).strip()
    deps = [] if deps == "none" else [d.strip() for d in deps.split(",")]
    return "```markdown\n" + spec_markdown(name, type_, deps) + "\n```"


def composer_provider(arch_yaml=None, spec_answer=None) -> ScriptedProvider:
    """Answers the architecture prompt with `arch_yaml` (a text or a function of the prompt;
    default: FOUR) and writes valid specs."""
    arch_yaml = arch_yaml if arch_yaml is not None else "```yaml\n" + architecture(FOUR) + "```"
    return ScriptedProvider([
        ("You are a software architect", arch_yaml),
        ("You are a technical writer", spec_answer or _spec_from_prompt),
    ])


def four_component_factory():
    """`SPECHESTRA_PROVIDER=kit:four_component_factory` (module:callable selection)."""
    return composer_provider()


def workflow_project(root: Path, steps_yaml: str, modules: dict):
    """A project whose workflow spec `flow` runs `steps_yaml` over modules already in build/
    (name -> code; None: the spec without its module), ready to perform (no build needed)."""
    from spechestra import Conductor

    src, build = root / "src", root / "build"
    src.mkdir(parents=True, exist_ok=True)
    build.mkdir(exist_ok=True)
    for name in modules:
        (src / f"{name}.spec.md").write_text(spec_markdown(name))
    (src / "flow.spec.md").write_text(spec_markdown("flow", type_="workflow", deps=list(modules))
                                      .split("# Steps")[0] + "# Steps\n```yaml:steps\n" + steps_yaml + "```\n")
    for name, code in modules.items():
        if code is not None:
            (build / f"{name}.py").write_text(code)
    return Conductor(str(root))
