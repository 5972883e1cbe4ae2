"""One error tree: every exception Spechestra defines is a SpechestraError, carries its fields,
and survives the pickling Prefect and Dask put results and states through."""

import ast
import importlib
import pickle
import pkgutil
from pathlib import Path

import pytest

import spechestra
from spechestra import errors
from spechestra.core.models import BuildResult
from spechestra.core.planning import Project
from spechestra.core.precheck import check_build

PACKAGE = Path(spechestra.__file__).parent


def _exception_classes() -> list[type]:
    """Every class defined in our modules whose bases include an exception."""
    found = []
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="spechestra."):
        if info.name.endswith(("processes.reaper", "processes.step_child", "__main__")):
            continue  # scripts run in child processes (they define no exception class either)
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, BaseException)
                    and value.__module__ == module.__name__):
                found.append(value)
    return found


def test_every_exception_class_spechestra_defines_derives_from_spechestra_error():
    classes = _exception_classes()
    assert len(classes) >= 15  # the walk really reaches them
    assert [c.__qualname__ for c in classes if not issubclass(c, errors.SpechestraError)] == []


def test_no_module_defines_an_exception_class_outside_the_walk():
    """The source agrees: every `class X(...Error/Exception...)` is in a module the walk imports."""
    defined = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                    getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception", "Reached", "Busy"))
                    for b in node.bases):
                defined.add(node.name)
    assert defined <= {c.__name__ for c in _exception_classes()}


@pytest.mark.parametrize("error, builtin", [
    (errors.ConfigurationError("x", setting="SPECHESTRA_X"), ValueError),
    (errors.UnsafeDependency("a", "../b", "escapes"), ValueError),
    (errors.ProjectBusy("/p", "another build", 3), RuntimeError),
    (errors.ServerError("gone", log="/l"), RuntimeError),
    (errors.RunNotFound("none", flow_run_id="1"), LookupError),
    (errors.BudgetReached("budget reached: 3 of 3 LLM calls"), RuntimeError),
])
def test_each_error_is_still_the_builtin_callers_catch(error, builtin):
    assert isinstance(error, builtin) and isinstance(error, errors.SpechestraError)


def test_errors_carry_fields_through_a_pickle():
    error = errors.UnsafeDependency("a", "../b", "escapes the specs folder")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is errors.UnsafeDependency
    assert (back.spec, back.dependency, str(back)) == ("a", "../b", str(error))
    ended = pickle.loads(pickle.dumps(errors.EndedEarly("stopped", result={"partial": 1})))
    assert ended.result == {"partial": 1} and str(ended) == "stopped"


def test_an_empty_project_names_the_real_problem_and_no_spec(tmp_path):
    """Before: `specs_failed == ['(project)']` and "1 spec(s) not built: (project)"."""
    from spechestra import Conductor
    result = Conductor(str(tmp_path)).build()
    assert not result.success and result.specs_failed == [] and result.errors == {}
    assert result.problem.startswith("no specs in ") and result.message == result.problem


def test_the_api_and_the_flow_share_one_precheck(tmp_path):
    (tmp_path / "src").mkdir()
    refused = check_build(Project(str(tmp_path)))
    assert isinstance(refused, BuildResult) and "no specs in" in refused.problem
