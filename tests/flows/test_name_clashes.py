"""Spec names that would collide with Python, pytest or each other are refused before any LLM call,
in one line naming the spec and what to do, like any other plan problem (hostile inputs, round 2)."""

import pytest

import kit
from kit import build as kit_build
from spechestra import Conductor

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("name, says", [
    ("json", "would replace Python's or pytest's own module 'json'"),
    ("conftest", "would replace Python's or pytest's own module 'conftest'"),
    ("typing", "would replace Python's or pytest's own module 'typing'"),
    ("test_ok", "is a test module's name"),
    ("Other", "is not a safe spec name"),
    ("d\u0430ta", "is not a safe spec name"),  # a Cyrillic a
])
def test_a_clashing_name_is_refused_before_anything_is_paid(tmp_path, name, says):
    """Before: all accepted; `json` shadowed the standard library for every later test, `conftest`
    became a plugin for all specs, `typing` broke pytest's start with an opaque traceback."""
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{name}.spec.md").write_text(kit.spec_markdown("clash", description="Spec clash marker-clash."))
    (src / "ok.spec.md").write_text(kit.spec_markdown("ok", description="Spec ok marker-ok."))
    provider = kit_build.build_provider({"ok": "def ok(v):\n    return v\n", "clash": "def clash(v):\n    return v\n"},
                                        {"ok": "from ok import ok\n\n\ndef test_it():\n    assert ok(1) == 1\n"},
                                        {"marker-ok": "ok", "marker-clash": "clash"})
    result = Conductor(str(tmp_path), provider=provider).build()
    assert not result.success and result.specs_failed == [name] and result.specs_compiled == [], result
    assert says in result.errors[name] and "\n" not in result.errors[name], result.errors[name]
    assert result.llm_calls_made == 0 and not (tmp_path / "build" / f"{name}.py").exists()
    (src / f"{name}.spec.md").rename(src / "clash.spec.md")  # renamed as the message says: it builds
    again = Conductor(str(tmp_path), provider=provider).build(specs=["ok"])
    assert again.success and again.specs_compiled == ["ok"], again.errors


def test_two_names_one_letter_case_apart_are_refused(tmp_path):
    from spechestra.core.names import collision
    assert "only in letter case" in collision("data", ["data", "DATA"])
    assert collision("data", ["data", "other"]) is None
