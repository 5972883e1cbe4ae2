"""Test-run setup: an isolated PREFECT_HOME, tier markers by folder, and one Prefect test server
for the whole run, started only when a test outside `unit/` needs it.

Tiers: `unit/` (plain code, no server), `flows/` (real flow runs on the shared server), `e2e/`
(CLI subprocesses, deployments, workers, a browser). Select with `-m unit`, `-m "not e2e"`, ...
"""

import os
import tempfile
from pathlib import Path

# Before anything imports Prefect: never touch the user's ~/.prefect (database, result storage).
_HOME = tempfile.mkdtemp(prefix="spechestra-tests-prefect-")
os.environ["PREFECT_HOME"] = _HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("SPECHESTRA_REVIEW_POLL", "1")
os.environ.pop("SPECHESTRA_PROVIDER", None)

import pytest  # noqa: E402

TIERS = ("unit", "flows", "e2e")


def pytest_collection_modifyitems(items):
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server (SQLite in a temp dir) for the whole test run."""
    from kit.server import seeded_test_harness
    with seeded_test_harness(timeout=120):
        yield


@pytest.fixture(autouse=True)
def _server_unless_unit(request):
    if request.node.get_closest_marker("unit") is None:
        request.getfixturevalue("prefect_server")


@pytest.fixture
def project(tmp_path):
    """An empty project directory with SpecSoloist's default layout."""
    (tmp_path / "src").mkdir()
    return tmp_path
