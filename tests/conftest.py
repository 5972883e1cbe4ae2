"""Session-wide test setup: an isolated PREFECT_HOME and one Prefect test server per session."""

import os
import tempfile

# Before anything imports Prefect: never touch the user's ~/.prefect (database, result storage).
_HOME = tempfile.mkdtemp(prefix="spechestra-tests-prefect-")
os.environ["PREFECT_HOME"] = _HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("SPECHESTRA_REVIEW_POLL", "1")
os.environ.pop("SPECHESTRA_PROVIDER", None)

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    """One temporary Prefect server (SQLite in a temp dir) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def project(tmp_path):
    """An empty project directory with SpecSoloist's default layout."""
    (tmp_path / "src").mkdir()
    return tmp_path
