"""The whole pipeline from Python: `run_pipeline` runs the `compose_build_perform` flow in this
process, handing one metered provider (and any callbacks) to all three stages.
"""

from __future__ import annotations

from typing import Callable, Optional

from specsoloist.config import SpecSoloistConfig
from specsoloist.providers import LLMProvider

from .core.models import PipelineResult
from .core.options import MAX_WORKERS
from .orchestration import runtime
from .orchestration.pipeline import compose_build_perform
from .orchestration.prefect import flow_value, local_api, quiet_heartbeats
from .orchestration.watched import watched
from .providers import Meter

__all__ = ["compose_build_perform", "run_pipeline"]


def run_pipeline(request: str, project_dir: str = ".", auto_accept: bool = False, workflow: Optional[str] = None,
                 inputs: Optional[dict] = None, max_workers: int = MAX_WORKERS.default,
                 provider: Optional[LLMProvider] = None,
                 review_callback: Optional[Callable] = None, checkpoint_callback: Optional[Callable] = None,
                 on_start: Optional[Callable[[str], None]] = None, max_llm_calls: Optional[int] = None,
                 max_tokens: Optional[int] = None) -> PipelineResult:
    """Run the flow here; with no `provider`, one is chosen by setting, exactly as a deployed run
    would choose it (made on its first call)."""
    meter = Meter()
    config = SpecSoloistConfig.from_env(project_dir)
    llm = runtime.lazy_provider(config, meter, explicit=provider)
    with local_api(), runtime.using(provider=llm, review_callback=review_callback, checkpoint_callback=checkpoint_callback,
                       on_run=on_start), quiet_heartbeats():
        state = watched(lambda: compose_build_perform(
            request=request, project_dir=project_dir, auto_accept=auto_accept, workflow=workflow, inputs=inputs,
            max_workers=max_workers, max_llm_calls=max_llm_calls, max_tokens=max_tokens, return_state=True))
    result = flow_value(state)
    result.flow_run_id = str(state.state_details.flow_run_id) if state.state_details else None
    result.llm = meter.summary()
    return result
