"""Prefect's console lines as a command prints them (`orchestration.console_logs`), through
Prefect's own loggers and console handlers in this process."""

import io
import logging
import uuid

from prefect.events import Event

from spechestra.orchestration.console_logs import one_line_for_our_errors


def test_an_event_prefect_could_not_send_is_named_not_dumped():
    """Before: with the server gone, each event Prefect's events worker could not send printed a
    ~3 KB line (the event's whole repr: its payload, related resources, state details)."""
    run = f"prefect.task-run.{uuid.uuid4()}"
    event = Event(event="prefect.task-run.Completed", resource={"prefect.resource.id": run},
                  payload={"validated_state": {"message": "x" * 2000}})
    one_line_for_our_errors()
    internal = logging.getLogger("prefect._internal.concurrency")
    shown = io.StringIO()
    handler = next(h for h in logging.getLogger("prefect._internal").handlers  # Prefect's own (its `debug` one)
                   if type(h).__module__.startswith("prefect"))
    kept, handler.stream = handler.stream, shown
    try:
        internal.error("Service %r failed to process item %r", "EventsWorker", event)
    finally:
        handler.stream = kept
    line = shown.getvalue()
    assert f"Service 'EventsWorker' failed to process item <event prefect.task-run.Completed of {run}>" in line, line
    assert "Event(" not in line and len(line) < 400, line
