"""A Prefect database migrated by a newer Prefect is named as the cause, not a timeout."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)
EXE = Path(sys.executable).parent / "spechestra"


def _home_with_revision(home: Path, revision: str) -> Path:
    home.mkdir(parents=True)
    with sqlite3.connect(home / "prefect.db") as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    return home


def test_newer_database_is_explained(tmp_path, monkeypatch):
    """PREFECT_HOME is read through Prefect's settings (as a profile would set it), so the test
    changes it the way Prefect documents for code: `temporary_settings`."""
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, PREFECT_HOME, temporary_settings

    from spechestra.cli import doctor as prefect_home
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    # Wherever this process's settings point the database elsewhere: restore Prefect's default,
    # the file in PREFECT_HOME, as a user without that setting has it.
    default_db = {PREFECT_API_DATABASE_CONNECTION_URL}
    newer = str(_home_with_revision(tmp_path / "newer", "ffffffffffff"))
    with temporary_settings({PREFECT_HOME: newer}, restore_defaults=default_db):
        assert "revision ffffffffffff is unknown" in (prefect_home.problem() or "")
    known = sorted(prefect_home.known_revisions())[0]
    with temporary_settings({PREFECT_HOME: str(_home_with_revision(tmp_path / "ok", known))}, restore_defaults=default_db):
        assert prefect_home.problem() is None


def test_doctor_names_the_newer_database(tmp_path):
    if not EXE.exists():
        pytest.skip("spechestra console script not installed in this interpreter (run `make test`)")
    home = _home_with_revision(tmp_path / "home", "ffffffffffff")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_DATABASE_CONNECTION_URL"}
    done = subprocess.run([str(EXE), "doctor"], env={**env, "PREFECT_HOME": str(home), "COLUMNS": "400"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "migrated by a newer Prefect" in done.stderr + done.stdout
