"""Prefect's client retries a database blip's 500s in every process Spechestra runs, unless the
user chose the codes through Prefect's own settings (the e2e test restarts PostgreSQL)."""

import os

from prefect.settings import PREFECT_CLIENT_RETRY_EXTRA_CODES, temporary_settings

from spechestra.orchestration.prefect import riding_out_blips


def test_500_and_504_are_retried_here_and_in_child_processes(monkeypatch):
    monkeypatch.setenv("PREFECT_CLIENT_RETRY_EXTRA_CODES", "")  # so that monkeypatch restores it afterwards
    monkeypatch.delenv("PREFECT_CLIENT_RETRY_EXTRA_CODES")
    with riding_out_blips():
        assert PREFECT_CLIENT_RETRY_EXTRA_CODES.value() == {500, 504}
        assert os.environ["PREFECT_CLIENT_RETRY_EXTRA_CODES"] == "500,504"
    assert PREFECT_CLIENT_RETRY_EXTRA_CODES.value() == set()


def test_the_users_own_codes_win(monkeypatch):
    monkeypatch.setenv("PREFECT_CLIENT_RETRY_EXTRA_CODES", "")  # so that monkeypatch restores it afterwards
    monkeypatch.delenv("PREFECT_CLIENT_RETRY_EXTRA_CODES")
    with temporary_settings({PREFECT_CLIENT_RETRY_EXTRA_CODES: {418}}):  # as a profile would set it
        with riding_out_blips():
            assert PREFECT_CLIENT_RETRY_EXTRA_CODES.value() == {418}
            assert "PREFECT_CLIENT_RETRY_EXTRA_CODES" not in os.environ
