"""The dependency graph as a picture (SVG) for the Prefect UI, whose markdown shows images but
does not draw Mermaid. Columns by depth (a spec stands right of everything it needs), edges from
dependency to dependent, nodes coloured as in the Mermaid text. Plain code: no layout library."""

from __future__ import annotations

import base64
from html import escape
from typing import Iterable, Mapping, Optional

from .graph import PALETTE, topological_order

BOX_H, GAP_X, GAP_Y, PAD, CHAR_W = 28, 56, 14, 12, 7.2


def depths(deps: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Each node's column: one more than the deepest thing it needs (0 for none)."""
    known = {n: [d for d in ds if d in deps] for n, ds in deps.items()}
    depth: dict[str, int] = {}
    for node in topological_order(known):
        depth[node] = 1 + max((depth[d] for d in known[node]), default=-1)
    return depth


def svg(deps: Mapping[str, Iterable[str]], classes: Optional[Mapping[str, str]] = None) -> str:
    classes = classes or {}
    depth = depths(deps)
    columns: dict[int, list[str]] = {}
    for node in sorted(depth, key=lambda n: (depth[n], n)):
        columns.setdefault(depth[node], []).append(node)
    width_of = {c: max(len(n) for n in nodes) * CHAR_W + 2 * PAD for c, nodes in columns.items()}
    x_of: dict[int, float] = {}
    x: float = PAD
    for col in sorted(columns):
        x_of[col] = x
        x += width_of[col] + GAP_X
    place = {n: (x_of[c], PAD + i * (BOX_H + GAP_Y)) for c, nodes in columns.items() for i, n in enumerate(nodes)}
    total_w = x - GAP_X + PAD
    total_h = PAD + max((len(v) for v in columns.values()), default=0) * (BOX_H + GAP_Y) - GAP_Y + PAD
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}" height="{max(total_h, 2 * PAD):.0f}" '
             'font-family="DejaVu Sans Mono, monospace" font-size="12">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#607d8b"/></marker></defs>',
             '<rect width="100%" height="100%" fill="#ffffff"/>']
    for node, ds in deps.items():
        for dep in ds:
            if dep in place and node in place:
                (x1, y1), (x2, y2) = place[dep], place[node]
                parts.append(f'<line x1="{x1 + width_of[depth[dep]]:.0f}" y1="{y1 + BOX_H / 2:.0f}" x2="{x2:.0f}" '
                             f'y2="{y2 + BOX_H / 2:.0f}" stroke="#607d8b" stroke-width="1.2" marker-end="url(#arrow)"/>')
    for node, (x0, y0) in place.items():
        fill, stroke = PALETTE.get(classes.get(node, "pending"), PALETTE["pending"])
        parts.append(f'<rect x="{x0:.0f}" y="{y0:.0f}" width="{width_of[depth[node]]:.0f}" height="{BOX_H}" rx="5" '
                     f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>')
        parts.append(f'<text x="{x0 + PAD:.0f}" y="{y0 + BOX_H / 2 + 4:.0f}" fill="#212121">{escape(node)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def markdown_image(deps: Mapping[str, Iterable[str]], classes: Optional[Mapping[str, str]] = None,
                   alt: str = "Build graph") -> str:
    """The picture inline (a data: URI), so the artifact needs nothing served from anywhere."""
    data = base64.b64encode(svg(deps, classes).encode()).decode()
    return f"![{alt}](data:image/svg+xml;base64,{data})"
