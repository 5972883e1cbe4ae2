"""Prompt text for the Composer.

Prompts are part of the replay key (a recorded answer belongs to one exact prompt) and of the
Conductor's cache key, so any change here must bump `PROMPT_VERSION`.
"""

from __future__ import annotations

PROMPT_VERSION = "1"

ARCHITECTURE = """You are a software architect. Break the user's request into components, each of
which becomes one SpecSoloist spec (`<name>.spec.md`).

# User request
{request}

# Existing specs in the project
{existing}

# Rules
- Component names are snake_case identifiers (optionally in '/' folders). No spaces, no '..'.
- Types: function, type, bundle, module, workflow. Use `workflow` for a component that runs
  other components as steps.
- `dependencies` lists the names of components (or existing specs) a component uses.
- No dependency cycles.

# Output format
Respond with a single YAML document and nothing else:

```yaml
description: One or two sentences about the architecture
components:
  - name: component_name
    type: function
    description: What this component does
    inputs: {{name: type}}
    outputs: {{name: type}}
    dependencies: []
build_order: [component_name]
```
"""

SPEC = """You are a technical writer producing one SpecSoloist specification file.

# Component
Name: {name}
Type: {type}
Description: {description}
Inputs: {inputs}
Outputs: {outputs}
Dependencies: {dependencies}

# The architecture it belongs to
{architecture}

# Format
Write the complete `{name}.spec.md`. Start with YAML frontmatter:

---
name: {name}
type: {type}
status: draft
dependencies: [{dependency_list}]
---

Then these sections, in order:
- `# Overview`: one or two sentences.
- `# Interface`: a fenced `yaml:schema` block with `inputs:` and `outputs:` (each parameter has
  a `type` and a `description`). {type_rule}
- `# Behavior`: numbered functional requirements (FR-01, FR-02, ...).
- `# Constraints`: non-functional requirements.
- `# Contract`: pre- and post-conditions.
- `# Examples`: a table of inputs and expected outputs, including error cases.

Output only the markdown, starting with `---`.
"""

TYPE_RULES = {
    "workflow": "Also add a `# Steps` section with a fenced `yaml:steps` list; each step has "
                "`name`, `spec` and `inputs` mapping each input to `inputs.<x>` or "
                "`<step>.outputs.<y>`.",
    "bundle": "Also add a fenced `yaml:functions` block describing each function's inputs, "
              "outputs and behavior.",
    "module": "Also add an `# Exports` section listing what the module exports.",
}


def architecture_prompt(request: str, existing: list[str]) -> str:
    listed = "\n".join(f"- {name}" for name in sorted(existing)) or "(none)"
    return ARCHITECTURE.format(request=request.strip(), existing=listed)


def spec_prompt(component, architecture) -> str:
    import yaml

    def inline(value) -> str:
        return yaml.safe_dump(value, default_flow_style=True).strip() if value else "{}"

    return SPEC.format(
        name=component.name,
        type=component.type,
        description=component.description or "(none given)",
        inputs=inline(component.inputs),
        outputs=inline(component.outputs),
        dependencies=", ".join(component.dependencies) or "none",
        dependency_list=", ".join(component.dependencies),
        architecture=architecture.description or "(no description)",
        type_rule=TYPE_RULES.get(component.type, ""),
    )
