"""Dependency-graph helpers shared by the Composer and the Conductor (pure functions)."""

from __future__ import annotations

from typing import Iterable, Mapping, Optional

from ..errors import SpecError


def find_cycle(deps: Mapping[str, Iterable[str]]) -> Optional[list[str]]:
    """Return one cycle as a closed path (`[a, b, a]`), or None. Only edges inside `deps` count."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> Optional[list[str]]:
        state[node] = 1
        stack.append(node)
        for dep in deps.get(node, ()):
            if dep not in deps:
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in deps:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def topological_order(deps: Mapping[str, Iterable[str]], preferred: Iterable[str] = ()) -> list[str]:
    """Dependencies first; among ready nodes, the one earliest in `preferred` goes first.

    Assumes no cycle (call `find_cycle` first). Deterministic for a given input.
    """
    rank: dict[str, int] = {}
    for name in list(preferred) + list(deps):
        rank.setdefault(name, len(rank))
    remaining = {n: {d for d in deps[n] if d in deps} for n in deps}
    order: list[str] = []
    while remaining:
        ready = sorted((n for n, d in remaining.items() if not d), key=lambda n: rank[n])
        if not ready:
            raise SpecError("dependency cycle among: " + ", ".join(sorted(remaining)))
        node = ready[0]
        order.append(node)
        del remaining[node]
        for pending in remaining.values():
            pending.discard(node)
    return order


#: Fill and stroke of a node by its class (the Mermaid text and the picture share them).
PALETTE = {
    "completed": ("#c8f7c5", "#2e7d32"), "cached": ("#e0f2f1", "#00796b"), "failed": ("#ffcdd2", "#c62828"),
    "blocked": ("#eeeeee", "#9e9e9e"), "running": ("#fff9c4", "#f9a825"), "pending": ("#ffffff", "#90a4ae"),
}


def mermaid(deps: Mapping[str, Iterable[str]], classes: Optional[Mapping[str, str]] = None) -> str:
    """A Mermaid flowchart, edges pointing from dependency to dependent, nodes coloured by class."""
    palette = {cls: f"fill:{fill},stroke:{stroke}" for cls, (fill, stroke) in PALETTE.items()}
    ident = {n: "n" + str(i) for i, n in enumerate(deps)}
    lines = ["flowchart LR"]
    for node in deps:
        lines.append(f'    {ident[node]}["{node}"]')
    for node, ds in deps.items():
        for d in ds:
            if d in ident:
                lines.append(f"    {ident[d]} --> {ident[node]}")
    if classes:
        used = sorted(set(classes.values()) & set(palette))
        for cls in used:
            lines.append(f"    classDef {cls} {palette[cls]}")
        for node, cls in classes.items():
            if node in ident and cls in palette:
                lines.append(f"    class {ident[node]} {cls}")
    return "\n".join(lines)
