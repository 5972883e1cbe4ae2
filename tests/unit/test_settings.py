"""One settings object: typed, read when used, one error naming the variable and the form, the
README's list the same as the object's, and no other module reading the environment."""

import ast
import re
from pathlib import Path

import pytest

import spechestra
from spechestra.errors import ConfigurationError
from spechestra.settings import HIDDEN, rows, settings, temporary_settings

PACKAGE = Path(spechestra.__file__).parent
README = PACKAGE.parent / "README.md"
#: Files allowed to read os.environ, and why (the settings module's docstring says the same).
ALLOWED = {"settings.py": "the one place settings are read",
           "install_check.py": "must work when the rest of the package has been overwritten",
           "processes/warm_server.py": "sets each forked test run's environment, as a new interpreter would get it"}


def test_values_are_read_when_used_not_at_import(monkeypatch):
    monkeypatch.setenv("SPECHESTRA_LOCK_TIMEOUT", "5")
    assert settings.lock_timeout == 5.0
    monkeypatch.setenv("SPECHESTRA_LOCK_TIMEOUT", "7.5")
    assert settings.lock_timeout == 7.5
    monkeypatch.delenv("SPECHESTRA_LOCK_TIMEOUT")
    assert settings.lock_timeout == settings.setting("lock_timeout").default


@pytest.mark.parametrize("variable, raw, form", [
    ("SPECHESTRA_LOCK_TIMEOUT", "soon", "a number of seconds"),
    ("SPECHESTRA_SERVER_GRACE", "-1", "a number of seconds"),
    ("SPECHESTRA_BUILD_WORKERS", "0", "a whole number, 1 or more"),
    ("SPECHESTRA_SERVER", "cloud", "one of managed, temporary"),
    ("SPECHESTRA_SKIP_INSTALL_CHECK", "maybe", "1/true/yes or 0/false/no"),
    ("SPECHESTRA_CRASH_AFTER", "30", "a number of seconds, 45 or more"),
])
def test_a_bad_value_is_one_error_naming_the_variable_and_the_form(monkeypatch, variable, raw, form):
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigurationError) as failure:
        getattr(settings, next(a for a, s in settings.items() if variable in s.names))
    message = str(failure.value)
    assert message.startswith(f"{variable}={raw!r} is not valid") and form in message and "\n" not in message
    assert failure.value.setting == variable


def test_secrets_never_show(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret-value")
    shown = {r.variable: r for r in rows(with_prefect=False)}
    assert shown["ANTHROPIC_API_KEY"].value == HIDDEN and shown["ANTHROPIC_API_KEY"].source == "environment"
    assert "very-secret" not in repr(rows(with_prefect=False))


def test_temporary_settings_override_in_this_context_only(monkeypatch):
    monkeypatch.delenv("SPECHESTRA_PROVIDER", raising=False)
    with temporary_settings(provider="replay:/tmp/x"):
        assert settings.provider == "replay:/tmp/x"
        assert {r.variable: r.source for r in rows(with_prefect=False)}["SPECHESTRA_PROVIDER"] == "override"
    assert settings.provider is None


def test_the_readme_lists_exactly_the_settings_the_object_has():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("Options of a build", 1)[0]
    listed = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, re.M))
    ours = {name for _, s in settings.items() for name in s.names}
    assert listed == ours


def test_no_module_but_settings_reads_the_environment():
    readers = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv") \
                    and getattr(node.value, "id", "") == "os":
                readers.append(str(path.relative_to(PACKAGE)))
                break
    assert sorted(set(readers)) == sorted(ALLOWED)


def _readme_rows(first_column: str) -> dict[str, list[str]]:
    rows_ = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and cells:
            rows_[cells[0].strip("`")] = cells
    return rows_


def test_the_readme_gives_each_setting_its_real_default():
    table = _readme_rows("variable")
    for _, setting in settings.items():
        for name in setting.names[:1]:
            shown = table[name][1]
            assert shown == ("-" if setting.default is None else f"`{setting.default}`"), name


def test_the_readme_gives_each_option_its_real_default_and_description():
    from spechestra.core import options
    table = _readme_rows("option")
    for name in ("MAX_WORKERS", "MAX_FIXES", "RETRIES", "TEST_TIMEOUT", "STEP_TIMEOUT", "INCREMENTAL",
                 "MAX_LLM_CALLS", "MAX_TOKENS", "RETRY_DELAY"):
        option = getattr(options, name)
        assert table[name][3] == ("-" if option.default is None else f"`{option.default}`"), name
        assert table[name][4] == option.description, name


def test_the_cli_the_facade_and_the_flow_share_each_default():
    import inspect

    from spechestra.cli.app import build as build_command
    from spechestra.conductor import Conductor
    from spechestra.core import options
    from spechestra.orchestration.build import build as build_flow
    flow = inspect.signature(build_flow.fn).parameters
    cli = inspect.signature(build_command).parameters
    assert flow["max_workers"].default == options.MAX_WORKERS.default == cli["workers"].default.default
    assert inspect.signature(Conductor.build).parameters["max_workers"].default == options.MAX_WORKERS.default
    assert flow["max_fixes"].default == options.MAX_FIXES.default == cli["fixes"].default.default
    assert build_flow.parameters.properties["max_workers"]["description"] == options.MAX_WORKERS.description
