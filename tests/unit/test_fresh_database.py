"""A new PREFECT_HOME's database comes from a template Prefect migrated once (`server.fresh_database`),
only where the server would have made one itself, and only when the template is current."""

import sqlite3

import pytest

from spechestra.server import fresh_database as fresh


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    return tmp_path / "cache"


def _database(path, revision):
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
        conn.execute("CREATE TABLE flow (id TEXT)")
    return path


def test_the_head_is_one_of_prefects_own_revisions():
    assert fresh.head_revision() in fresh.known_revisions() and len(fresh.known_revisions()) > 100


def test_a_current_template_seeds_a_new_home_only(cache, tmp_path):
    template = _database(fresh.template_path(), fresh.head_revision())
    home = tmp_path / "home"
    home.mkdir()
    assert fresh.seed(home) == template
    assert fresh.revisions_of(home / "prefect.db") == {fresh.head_revision()}
    with sqlite3.connect(home / "prefect.db") as conn:  # a whole copy, not an empty file
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'flow'").fetchone() == (1,)
    assert fresh.seed(home) is None  # a database that exists is never touched


def test_a_stale_or_missing_template_leaves_the_migrations_to_prefect(cache, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert fresh.seed(home) is None and not (home / "prefect.db").exists()  # no template yet
    _database(fresh.template_path(), "0123456789ab")  # made by another Prefect
    assert fresh.seed(home) is None and not (home / "prefect.db").exists()


def test_a_database_of_the_users_choosing_is_never_seeded(cache, tmp_path, monkeypatch):
    _database(fresh.template_path(), fresh.head_revision())
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}")
    home = tmp_path / "home"
    home.mkdir()
    assert fresh.seed(home) is None and not (home / "prefect.db").exists()


def test_a_first_start_skips_block_registration_only_on_a_template_holding_this_installs_blocks(cache, tmp_path,
                                                                                               monkeypatch):
    from spechestra.server.local import REGISTER_BLOCKS, server_env
    template = _database(fresh.template_path(), fresh.head_revision())
    mark = template.with_name(template.name + ".blocks")
    assert not fresh.has_blocks(template) and REGISTER_BLOCKS not in server_env(tmp_path, 4200, template)
    mark.write_text("prefect-aws==0.1")  # registered when other collections were installed
    assert not fresh.has_blocks(template) and REGISTER_BLOCKS not in server_env(tmp_path, 4200, template)
    mark.write_text(fresh.collections_key())
    assert fresh.has_blocks(template) and server_env(tmp_path, 4200, template)[REGISTER_BLOCKS] == "false"
    assert REGISTER_BLOCKS not in server_env(tmp_path, 4200, None)  # a database that was there already
    monkeypatch.setenv(REGISTER_BLOCKS, "true")  # the user's own choice stands
    assert server_env(tmp_path, 4200, template)[REGISTER_BLOCKS] == "true"


def test_a_start_outside_the_managed_one_seeds_under_its_lock(cache, tmp_path):
    """The foreground and temporary servers seed a new home too; while a managed start holds the
    home's start lock (it seeds and launches under it) they wait, so no copy lands over another."""
    import fcntl
    import threading

    from spechestra.server.local import seed_alone
    template = _database(fresh.template_path(), fresh.head_revision())
    home = tmp_path / "home"
    home.mkdir()
    seeded = []
    with open(home / "spechestra-server.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as `local.start` holds it
        waiter = threading.Thread(target=lambda: seeded.append(seed_alone(home)))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and not (home / "prefect.db").exists()
    waiter.join(10)
    assert seeded == [template] and fresh.revisions_of(home / "prefect.db") == {fresh.head_revision()}
    assert seed_alone(tmp_path / "new") == template  # a home that does not exist yet is made
