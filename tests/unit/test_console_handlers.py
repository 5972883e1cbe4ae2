"""Finding Prefect's console handlers while other threads make loggers (a Dask or Ray worker
starts each spec's task while the others import: "dictionary changed size during iteration"
failed a spec once, with no LLM call made)."""

import logging
import sys
import threading

from spechestra.orchestration.console_logs import console_handlers


def test_console_handlers_can_be_found_while_another_thread_makes_loggers():
    console_handlers()  # Prefect imported first: the race is in the finding, not the import
    made, failures = threading.Event(), []

    def make_loggers():
        for i in range(5_000):
            logging.getLogger(f"spechestra-test-logger-{threading.get_ident()}-{i}")
        made.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows in a few calls
    try:
        maker = threading.Thread(target=make_loggers)
        maker.start()
        while not made.is_set():
            try:
                console_handlers()
            except RuntimeError as exc:
                failures.append(str(exc))
        maker.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert failures == []
