"""Prefect's console lines as a command prints them (`orchestration.console_logs`): Prefect's own
loggers and handlers, in a fresh interpreter (with a key set, `redaction` changes how every log
record is made in the process, for good)."""

import os
import subprocess
import sys
import uuid

import pytest

pytestmark = pytest.mark.timeout(120)

SCRIPT = """
import logging, sys
from prefect.events import Event
from spechestra import redaction
from spechestra.orchestration.console_logs import one_line_for_our_errors
redaction.install()
one_line_for_our_errors()
event = Event(event="prefect.task-run.Completed", resource={"prefect.resource.id": sys.argv[1]},
              payload={"validated_state": {"message": "x" * 2000}})
logging.getLogger("prefect._internal.concurrency").error("Service %r failed to process item %r", "EventsWorker", event)
"""


@pytest.mark.parametrize("key", ["", "sk-test-" + "k" * 24], ids=["no key", "a key set"])
def test_an_event_prefect_could_not_send_is_named_not_dumped(key):
    """Before: with the server gone, each event Prefect's events worker could not send printed a
    ~3 KB line (the event's whole repr: its payload, related resources, state details). With a key
    set, records are formatted as they are made (redaction), before any filter sees them."""
    run = f"prefect.task-run.{uuid.uuid4()}"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    if key:
        env["OPENAI_API_KEY"] = key
    done = subprocess.run([sys.executable, "-c", SCRIPT, run], env=env, capture_output=True, text=True, timeout=60)
    said = done.stdout + done.stderr
    assert f"Service 'EventsWorker' failed to process item <event prefect.task-run.Completed of {run}>" in said, said
    assert "Event(" not in said and len(said) < 400, said
