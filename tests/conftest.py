"""Test-run setup: an isolated PREFECT_HOME, tier markers by folder, and one Prefect test server
for the whole run, started only when a test outside `unit/` needs it.

Tiers: `unit/` (plain code, no server), `flows/` (real flow runs on the shared server), `e2e/`
(CLI subprocesses, deployments, workers, a browser). Select with `-m unit`, `-m "not e2e"`, ...
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Before anything imports Prefect: never touch the user's ~/.prefect (database, result storage).
# Removed when this process ends (each test worker has one): left, they filled /tmp with every
# run's results (1.8 GB in a day here).
_HOME = tempfile.mkdtemp(prefix="spechestra-tests-prefect-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ["PREFECT_HOME"] = _HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("SPECHESTRA_REVIEW_POLL", "1")
os.environ.pop("SPECHESTRA_PROVIDER", None)

import pytest  # noqa: E402

TIERS = ("unit", "flows", "e2e")

#: The files that take longest, longest first (seconds on 3 workers here, 2026-12-06). With
#: `make test`'s `--no-loadscope-reorder`, xdist hands files out in this order, so the long ones
#: start first and the short ones fill in around them: by number of tests (xdist's default) the
#: 95 s dead-runs file, one test, started last and ran alone (8 min 57 s, the other workers
#: idle from 6 min 34 s). Other files follow by tier, e2e first.
LONGEST_FIRST = (
    "e2e/test_cli.py",            # 149
    "e2e/test_deploy.py",         # 131
    "e2e/test_local_server.py",   # 107
    "e2e/test_dead_runs.py",      # 95
    "e2e/test_browser.py",        # 77
    "e2e/test_dask_cluster.py",   # 73
    "e2e/test_resume.py",         # 54
    "e2e/test_team_server.py",    # 53
    "e2e/test_limit_faults.py",   # 50
    "flows/test_build.py",        # 40 (the flows first in `make test-fast`)
    "e2e/test_concurrency.py",    # 30
    "e2e/test_llm_limit.py",      # 29
    "flows/test_perform.py",      # 27
    "flows/test_pipeline.py",     # 25
    "e2e/test_stopping.py",       # 24
    "e2e/test_first_run.py",      # 22
    "flows/test_containment.py",  # 21
    "flows/test_real_llm_http.py",  # 20
    "flows/test_never_wrong_2.py",  # 17
    # The rest of the flows and unit files over 7 s (2026-12-07, `make test-fast` on 4 workers, which
    # ended with the unit ones after short flows files); measured: 116.7-125.5 s in three runs
    # against 117.3-129.9 s in three without, no difference beyond this machine's noise.
    "flows/test_never_wrong.py",  # 25
    "flows/test_review.py",       # 17
    "flows/test_budget.py",       # 15
    "flows/test_cli_user_errors.py",  # 13
    "flows/test_dask.py",         # 12
    "flows/test_name_clashes.py",  # 11
    "unit/test_watchdog.py",      # 11
    "flows/test_bad_input.py",    # 9
    "unit/test_warm.py",          # 8
    "unit/test_http_providers.py",  # 8
    "flows/test_console_logs.py",  # 7
    "unit/test_cli_startup.py",   # 7
)


def _schedule_rank(item) -> tuple[int, int]:
    path = Path(str(item.fspath))
    name = f"{path.parent.name}/{path.name}"
    if name in LONGEST_FIRST:
        return 0, LONGEST_FIRST.index(name)
    return 1, ("e2e", "flows", "unit").index(path.parent.name) if path.parent.name in TIERS else 3


def pytest_collection_modifyitems(items):
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
    items.sort(key=_schedule_rank)  # stable: a file's tests keep their order


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One Prefect server (SQLite in a temp dir) for the whole test run (of this test worker)."""
    import gc

    import spechestra.orchestration.prefect  # noqa: F401 (with Prefect: what the tests run flows with)
    from kit.server import session_server
    with session_server(tmp_path_factory.mktemp("test-server"), timeout=120) as server:
        gc.freeze()  # the imports so far outlive every test: kept out of the collections of the run (~8% of its CPU)
        yield server


@pytest.fixture(autouse=True)
def _server_unless_unit(request):
    if request.node.get_closest_marker("unit") is None:
        request.getfixturevalue("prefect_server")


@pytest.fixture
def project(tmp_path):
    """An empty project directory with SpecSoloist's default layout."""
    (tmp_path / "src").mkdir()
    return tmp_path
