"""Prefect's client retries a database blip's 500s in every process Spechestra runs, unless the
user chose the codes through Prefect's own settings (the e2e test restarts PostgreSQL)."""

import os

from prefect.settings import PREFECT_CLIENT_RETRY_EXTRA_CODES, temporary_settings

from spechestra.orchestration.prefect import using_api

NOWHERE = "http://127.0.0.1:9/api"  # never called: only the settings a command runs with are read


def _restored_afterwards(monkeypatch, *names):
    for name in names:
        monkeypatch.setenv(name, "")  # so that monkeypatch restores it afterwards
        monkeypatch.delenv(name)


def test_500_and_504_are_retried_here_and_in_child_processes(monkeypatch):
    _restored_afterwards(monkeypatch, "PREFECT_CLIENT_RETRY_EXTRA_CODES", "PREFECT_API_URL")
    with using_api(NOWHERE):
        assert PREFECT_CLIENT_RETRY_EXTRA_CODES.value() == {500, 504}
        assert os.environ["PREFECT_CLIENT_RETRY_EXTRA_CODES"] == "500,504"
    assert PREFECT_CLIENT_RETRY_EXTRA_CODES.value() == set()


def test_the_users_own_codes_win(monkeypatch):
    _restored_afterwards(monkeypatch, "PREFECT_CLIENT_RETRY_EXTRA_CODES", "PREFECT_API_URL")
    with temporary_settings({PREFECT_CLIENT_RETRY_EXTRA_CODES: {418}}):  # as a profile would set it
        with using_api(NOWHERE):
            assert PREFECT_CLIENT_RETRY_EXTRA_CODES.value() == {418}
            assert "PREFECT_CLIENT_RETRY_EXTRA_CODES" not in os.environ
