"""Process-wide tables read while other threads add to them: a spec's task runs in a thread (on
Dask or Ray too) while others import, log and meter their calls."""

import logging
import sys
import threading

from spechestra.orchestration.console_logs import console_handlers


def test_console_handlers_can_be_found_while_another_thread_makes_loggers():
    """ "dictionary changed size during iteration" failed a spec on a Ray worker once (no LLM call made)."""
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


def test_a_key_registered_while_another_thread_checks_text_for_keys():
    """A provider's key is registered when its first call is metered, in that spec's thread, while
    other threads' log lines are checked for keys ("Set changed size during iteration")."""
    import subprocess
    script = """
import sys, threading
from spechestra import redaction
sys.setswitchinterval(1e-6)
done, failures = threading.Event(), 0
def register():
    for i in range(5000):
        redaction.register(f"secret-value-{i:06d}")
    done.set()
threading.Thread(target=register).start()
while not done.is_set():
    try:
        redaction.contains_secret("a log line")
    except RuntimeError:
        failures += 1
print(failures)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["0"], done.stdout + done.stderr[-2000:]
