"""The build graph as a picture (the Prefect UI draws images, not Mermaid)."""

import base64
import re
import xml.etree.ElementTree as ET

from spechestra.core.graph_picture import depths, markdown_image, svg

DEPS = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "math_workflow": ["d"], "<odd & name>": []}


def test_a_spec_stands_right_of_everything_it_needs():
    assert depths(DEPS) == {"a": 0, "b": 1, "c": 1, "d": 2, "math_workflow": 3, "<odd & name>": 0}


def test_the_picture_has_every_spec_every_edge_and_its_colour():
    root = ET.fromstring(svg(DEPS, {"b": "failed"}))
    ns = "{http://www.w3.org/2000/svg}"
    assert sorted(t.text for t in root.iter(ns + "text")) == sorted(DEPS)  # full names, escaped
    assert len(list(root.iter(ns + "line"))) == sum(len(v) for v in DEPS.values())
    fills = [r.get("fill") for r in root.iter(ns + "rect")][1:]  # after the background
    assert "#ffcdd2" in fills and fills.count("#ffffff") == len(DEPS) - 1


def test_the_markdown_image_carries_the_picture_inline():
    line = markdown_image(DEPS)
    data = re.fullmatch(r"!\[Build graph\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", line).group(1)
    assert base64.b64decode(data).decode() == svg(DEPS)
