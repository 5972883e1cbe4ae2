"""Dead runs found: the automation that marks a Spechestra deployment run Crashed once its
heartbeats stop (a worker machine lost, a flow-run process killed), Prefect's own answer to lost
infrastructure (docs: "detect zombie flows").

Deployment runs send a heartbeat every `HEARTBEAT_SECONDS` (prefect.yaml's job variables); the
automation expects some event of the run within `SPECHESTRA_CRASH_AFTER` seconds (90) of each
heartbeat, so a dead run is Crashed within about that plus one heartbeat. It watches only runs tagged
`spechestra` (every deployment in prefect.yaml is), so other flows on a team's server, with their
own heartbeat frequency, are never touched. Paused runs keep sending heartbeats while they wait.

A second automation resumes a crashed deployment run: it puts it back in AwaitingRetry (what the
UI's Retry does), a worker picks it up, and the build goes on from the cache and the answers it
paid for. Flow-level retries cannot do this (the process that would retry is the one that died).
A run that keeps crashing (a build that kills its machine) is resumed `MAX_RESUMES` times, then
fails at its start saying why (`check_resumes`), so the two automations never loop.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Union

from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

from ..errors import RunFailed
from ..settings import settings
from .prefect import client, current_flow_run_id, in_deployment_run, is_root_flow_run

NAME = "spechestra: crash runs whose heartbeats stopped"
HEARTBEAT_SECONDS = 30  # Prefect's shortest; prefect.yaml sets PREFECT_FLOWS_HEARTBEAT_FREQUENCY to it
MAX_RESUMES = 2  # a run that crashes a third time fails at its next start instead of building


def silence_seconds() -> float:
    """How long a run may go without a heartbeat (`SPECHESTRA_CRASH_AFTER`, default three missed
    heartbeats: a blip is never a crash)."""
    return settings.crash_after


def message() -> str:
    return (f"no heartbeat for {silence_seconds():g}s: the machine or process running it is gone "
            f"(resumed automatically up to {MAX_RESUMES} times, from the cache and the answers it paid for)")


RESUME_NAME = "spechestra: resume crashed runs"
RESUME_MESSAGE = "resumed after a crash by the automation 'spechestra: resume crashed runs'"


def _spechestra_deployment_runs() -> list[Union[ResourceSpecification, dict[str, Union[str, list[str]]]]]:
    """Runs of Spechestra's deployments only: tagged `spechestra` (prefect.yaml) and started from a
    deployment (a crashed local run has no worker to resume it)."""
    return [ResourceSpecification({"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.spechestra"}),
            ResourceSpecification({"prefect.resource.role": "deployment"})]


def automation() -> AutomationCore:
    return AutomationCore(
        name=NAME,
        description="Marks a Spechestra deployment run Crashed when its heartbeats stop (set up by spechestra deploy).",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.*"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=_spechestra_deployment_runs(),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=silence_seconds()),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, name="Crashed", message=message(), force=False)],
    )


def resume_automation() -> AutomationCore:
    return AutomationCore(
        name=RESUME_NAME,
        description=f"Retries a crashed Spechestra deployment run (up to {MAX_RESUMES} times; set up by spechestra deploy).",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=_spechestra_deployment_runs(),
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[ChangeFlowRunState(state=StateType.SCHEDULED, name="AwaitingRetry", message=RESUME_MESSAGE,
                                    force=True)],
    )


def check_resumes() -> None:
    """At the start of a deployment run: give up (Failed, which no automation resumes) once the
    run has been resumed after crashes `MAX_RESUMES` times and has started yet again."""
    run_id = current_flow_run_id()
    if not (run_id and in_deployment_run() and is_root_flow_run()):
        return
    with client() as c:
        resumed = sum(1 for state in c.read_flow_run_states(run_id) if state.message == RESUME_MESSAGE)
    if resumed > MAX_RESUMES:
        raise RunFailed(f"this run crashed {resumed} times and was resumed {MAX_RESUMES} times: not resumed again; "
                        "find what kills it in the worker's log, then retry it by hand")


def ensure_automation() -> list[str]:
    """Create both automations, or bring existing ones up to date; what was done, in words."""
    wanted = {NAME: (automation(), f"a run without heartbeats for {silence_seconds():g}s is Crashed"),
              RESUME_NAME: (resume_automation(), f"a crashed run is retried, up to {MAX_RESUMES} times")}
    done = []
    with client() as c:
        for name, (spec, meaning) in wanted.items():
            existing = c.read_automations_by_name(name)
            if existing:
                c.update_automation(existing[0].id, spec)
                done.append(f"automation {name!r} updated")
            else:
                c.create_automation(spec)
                done.append(f"created automation {name!r} ({meaning})")
    return done
