"""Whose stop is whose (`spechestra.stopping`): a signal stops the process; a library call's own
stop (its server gone, a Ctrl-C its caller caught) is that call's, and outlives the next call's
start, which resets the process's stop. Real threads and contexts, as the flow's are."""

import contextvars
import threading
import time

import pytest

from spechestra import stopping


@pytest.fixture(autouse=True)
def no_stop_left():
    stopping.reset()
    yield
    stopping.reset()


def test_a_calls_stop_outlives_the_next_calls_start_and_stays_its_own():
    """Before: `watched` stopped the process; the next call's `reset` at its start undid it, so
    the stopped call's thread, once out of Prefect's retries, built on and paid (and a stop left
    set stopped any later work in the process that did not reset it first)."""
    with stopping.scoped() as first:
        flow_thread = contextvars.copy_context()  # what the stopped call's flow thread runs in
    first.request("the Prefect server stopped answering")
    assert flow_thread.run(stopping.requested)
    assert not stopping.requested()  # not the process's: other work in it goes on
    stopping.reset()  # the next call starts
    with stopping.scoped():
        assert not stopping.requested()
    assert flow_thread.run(stopping.requested)
    assert flow_thread.run(stopping.reason) == "the Prefect server stopped answering"
    with pytest.raises(stopping.Interrupted, match="the Prefect server stopped answering"):
        flow_thread.run(stopping.check)


def test_a_signal_stops_every_call_and_ends_their_waits():
    woke: list[float] = []
    with stopping.scoped():
        waiting = contextvars.copy_context()

    def wait():
        started = time.monotonic()
        stopping.sleep(60)
        woke.append(time.monotonic() - started)

    thread = threading.Thread(target=waiting.run, args=(wait,))
    thread.start()
    time.sleep(0.2)
    stopping.request("Ctrl-C")
    thread.join(timeout=10)
    assert woke and woke[0] < 10, "the wait for the retry or the lock went on after Ctrl-C"
    assert waiting.run(stopping.reason) == "Ctrl-C" and stopping.requested()


def test_a_stop_reaches_the_files_its_call_shared_and_only_those(tmp_path):
    with stopping.scoped() as one:
        unshare_one = stopping.share(str(tmp_path / "one"))
    with stopping.scoped():
        unshare_two = stopping.share(str(tmp_path / "two"))
    try:
        one.request("Ctrl-C")
        assert (tmp_path / "one").read_text() == "Ctrl-C" and not (tmp_path / "two").exists()
        stopping.request("SIGTERM")
        assert (tmp_path / "two").read_text() == "SIGTERM"
    finally:
        unshare_one(), unshare_two()
    assert not (tmp_path / "one").exists() and not (tmp_path / "two").exists()
