"""The Prefect global concurrency limit bounds LLM calls across separate build processes."""

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kit import build as kit_build
from kit.calls import calls as call_log
from kit.calls import peak_overlap

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[2]


def _builds(tmp_path, name_suffix, limit_name):
    from prefect.settings import PREFECT_API_URL
    times = tmp_path / f"calls-{name_suffix}.txt"
    procs = []
    for i in range(2):
        project = tmp_path / f"proj-{name_suffix}-{i}"
        kit_build.write_wide_project(project)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(Path(__file__).parents[1])]),
                   PREFECT_API_URL=PREFECT_API_URL.value(), SPECHESTRA_PROVIDER="kit.build:timed_wide_provider",
                   CALL_TIMES=str(times), CALL_SECONDS="0.4", SPECHESTRA_LLM_LIMIT=limit_name)
        procs.append(subprocess.Popen([sys.executable, "-m", "spechestra", "build", "--project", str(project),
                                       "--workers", "4"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True))
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-2000:] for o in outputs)
    return call_log(times)


@contextlib.contextmanager
def _limit(name: str, limit: int):
    """A global concurrency limit on the session's server for the block's length; yields a
    function reading how many of its slots are held."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    with get_client(sync_client=True) as c:
        c.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))

    def held() -> int:
        with get_client(sync_client=True) as c:
            return c.read_global_concurrency_limit_by_name(name).active_slots
    try:
        yield held
    finally:
        with get_client(sync_client=True) as c:
            c.delete_global_concurrency_limit_by_name(name)


def test_two_concurrent_builds_never_exceed_the_limit(tmp_path):
    name = f"spechestra-llm-{tmp_path.name}".lower().replace("_", "-")
    with _limit(name, 2):
        calls = _builds(tmp_path, "limited", name)
    assert len(calls) == 16 and peak_overlap(calls) <= 2  # 2 builds x 4 specs x (code, tests)
    unlimited = _builds(tmp_path, "free", name + "-absent")
    assert len(unlimited) == 16 and peak_overlap(unlimited) > 2  # the limit, not luck, held it


def _compose(tmp_path, name_suffix, limit_name):
    from prefect.settings import PREFECT_API_URL
    times = tmp_path / f"compose-calls-{name_suffix}.txt"
    project = tmp_path / f"composed-{name_suffix}"
    (project / "src").mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(Path(__file__).parents[1])]),
               PREFECT_API_URL=PREFECT_API_URL.value(), SPECHESTRA_PROVIDER="kit.build:timed_composer_provider",
               CALL_TIMES=str(times), CALL_SECONDS="0.5", SPECHESTRA_LLM_LIMIT=limit_name)
    done = subprocess.run([sys.executable, "-m", "spechestra", "compose", "CSV statistics", "--project",
                           str(project), "--yes"], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return call_log(times)


def test_compose_calls_hold_the_limit_too(tmp_path):
    """Before: compose's calls never passed the gate (20 in flight under a limit of 2)."""
    name = f"spechestra-llm-c-{tmp_path.name}".lower().replace("_", "-")
    with _limit(name, 1) as held:
        calls = _compose(tmp_path, "limited", name)
        assert held() == 0  # every slot given back
    assert len(calls) == 5 and peak_overlap(calls) == 1  # the draft + 4 specs, one at a time
    unlimited = _compose(tmp_path, "free", name + "-absent")
    assert len(unlimited) == 5 and peak_overlap(unlimited) > 1  # the limit, not luck, held it
