"""Dead runs found: the automation that marks a Spechestra deployment run Crashed once its
heartbeats stop (a worker machine lost, a flow-run process killed), Prefect's own answer to lost
infrastructure (docs: "detect zombie flows").

Deployment runs send a heartbeat every `HEARTBEAT_SECONDS` (prefect.yaml's job variables); the
automation expects some event of the run within `SILENCE_SECONDS` of each heartbeat, so a dead
run is Crashed within about SILENCE_SECONDS plus one heartbeat. It watches only runs tagged
`spechestra` (every deployment in prefect.yaml is), so other flows on a team's server, with their
own heartbeat frequency, are never touched. Paused runs keep sending heartbeats while they wait.
"""

from __future__ import annotations

from datetime import timedelta

from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

from .prefect import client

NAME = "spechestra: crash runs whose heartbeats stopped"
HEARTBEAT_SECONDS = 30  # Prefect's shortest; prefect.yaml sets PREFECT_FLOWS_HEARTBEAT_FREQUENCY to it
SILENCE_SECONDS = 3 * HEARTBEAT_SECONDS  # three missed heartbeats: a blip is never a crash
MESSAGE = (f"no heartbeat for {SILENCE_SECONDS}s: the machine or process running it is gone "
           "(retry the run: it resumes from the cache and the answers it paid for)")


def automation() -> AutomationCore:
    return AutomationCore(
        name=NAME,
        description="Marks a Spechestra deployment run Crashed when its heartbeats stop (set up by spechestra deploy).",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.*"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification({"prefect.resource.role": "tag",
                                                 "prefect.resource.id": "prefect.tag.spechestra"}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=SILENCE_SECONDS),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, name="Crashed", message=MESSAGE, force=False)],
    )


def ensure_automation() -> str:
    """Create the automation, or bring an existing one up to date; what was done, in words."""
    wanted = automation()
    with client() as c:
        existing = c.read_automations_by_name(NAME)
        if existing:
            c.update_automation(existing[0].id, wanted)
            return f"automation {NAME!r} updated"
        c.create_automation(wanted)
    return f"created automation {NAME!r} (a run without heartbeats for {SILENCE_SECONDS}s is Crashed)"
