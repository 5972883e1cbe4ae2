"""An arrangement's environment: config files, static files and setup commands, once per build."""

from pathlib import Path

import pytest

import kit
from kit import build as kit_build
from spechestra import Conductor
from spechestra.core.build_setup import prepare
from spechestra.core.project import Layout

pytestmark = pytest.mark.timeout(300)

ARRANGEMENT = """\
target_language: python
output_paths:
  implementation: pkg/{name}.py
  tests: tests/test_{name}.py
environment:
  config_files:
    pyproject.toml: |
      [project]
      name = "demo"
  setup_commands:
    - definitely-not-installed-tool sync
    - sh -c 'echo ready > setup-ran.txt'
    - sh -c 'exit 3'
static:
  - source: assets/
    dest: pkg/assets/
  - source: NOTES.md
    dest: NOTES.md
    overwrite: false
  - source: missing.txt
    dest: missing.txt
  - source: ../outside.txt
    dest: outside.txt
build_commands:
  test: pytest
"""


def _project(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "e.spec.md").write_text(kit.spec_markdown("e", description="Spec e marker-e."))
    (root / "arrangement.yaml").write_text(ARRANGEMENT)
    (root / "assets").mkdir()
    (root / "assets" / "logo.bin").write_bytes(bytes(range(256)))
    (root / "NOTES.md").write_text("notes from the project\n")
    (root.parent / "outside.txt").write_text("must not be copied\n")
    return root


def test_build_prepares_the_environment_then_compiles(tmp_path):
    project = _project(tmp_path / "proj")
    (project / "build").mkdir()
    (project / "build" / "NOTES.md").write_text("edited by the user\n")
    provider = kit_build.build_provider({"e": "def e(v):\n    return v\n"},
                                        {"e": "from e import e\n\ndef test_e():\n    assert e(2) == 2\n"},
                                        {"marker-e": "e"})
    result = Conductor(str(project), provider=provider).build()
    assert result.success, result.errors
    build = project / "build"
    assert (build / "pyproject.toml").read_text() == '[project]\nname = "demo"\n'
    assert (build / "pkg" / "assets" / "logo.bin").read_bytes() == bytes(range(256))
    assert (build / "NOTES.md").read_text() == "edited by the user\n"  # overwrite: false
    assert (build / "setup-ran.txt").read_text().strip() == "ready"
    assert not (build / "outside.txt").exists() and (build / "pkg" / "e.py").exists()
    notes = "\n".join(result.setup)
    assert "'definitely-not-installed-tool' is not installed" in notes
    assert "failed (exit 3)" in notes
    assert "missing.txt skipped: not found" in notes and "refused" in notes


def test_no_arrangement_means_nothing_to_prepare(tmp_path):
    layout = Layout(str(tmp_path), str(tmp_path), str(tmp_path / "build"))
    assert prepare(layout) == [] and not (tmp_path / "build").exists()
