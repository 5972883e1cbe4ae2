"""The one thing an in-process caller hands to the flow runs it starts, in one context variable.

Flow parameters must be plain data (deployments and the UI send them), but a caller in this
process may have objects to hand over: a provider, review and checkpoint callbacks, a subclass's
`draft`/`write_spec`/`make_job`, a review board for the terminal. They travel in a frozen
`Runtime`: the public classes set it (`using`), flows and tasks read it (`current`), and
Prefect copies context variables into the threads that run tasks. A run with nothing handed
over (a deployment, the UI, a Dask worker) gets the same from settings (`complete`).
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable, Iterator, Optional, TypeVar

from specsoloist.config import SpecSoloistConfig
from specsoloist.providers import LLMProvider

from ..core import composing
from ..core.budget import Budget
from ..core.models import Architecture, ComponentDef
from ..core.planning import MakeJob
from ..core.reviews import CheckpointCallback, ReviewCallback
from ..errors import ConfigurationError
from ..providers import (
    LazyProvider,
    Meter,
    MeteredProvider,
    identity_of,
    resolve_provider,
)
from ..settings import settings
from . import zombies
from .console_logs import one_line_for_our_errors
from .pauses import ReviewBoard
from .prefect import (
    current_flow_run_id,
    current_task_run_name,
    is_root_flow_run,
    secret_value,
    variable_value,
)


@dataclass(frozen=True)
class Runtime:
    """What flows use beyond their parameters; None means "the default, from settings"."""

    provider: Optional[LLMProvider] = None                  # often a LazyProvider
    review_callback: Optional[ReviewCallback] = None        # answers reviews instead of pausing
    checkpoint_callback: Optional[CheckpointCallback] = None  # answers checkpoints instead of pausing
    draft: Optional[Callable[[str, list], Architecture]] = None      # BaseComposer.draft
    write_spec: Optional[Callable[[ComponentDef, Architecture], str]] = None  # BaseComposer.write_spec
    prepare: Optional[Callable[[], None]] = None            # fail fast on configuration, before tasks
    make_job: Optional[MakeJob] = None                       # BaseConductor.make_job
    arrangement: Any = None                                  # an Arrangement or path overriding the project's
    board: Optional[ReviewBoard] = None                      # where a terminal reviewer looks for pauses
    on_run: Optional[Callable[[str], None]] = None           # told the id of the top-level run it starts
    context: Optional[dict] = None                           # Composer.compose's `context` (existing_specs)
    config: Optional[SpecSoloistConfig] = None               # the caller's SpecSoloist config (e.g. its src dir)
    lock_timeout: Optional[float] = None                     # seconds to wait for another build of the project
    progress: Optional[Callable[[str, str], None]] = None    # told (spec or step, phase) as work goes on
    budget: Optional[Budget] = None                          # the run's spending cap (shared by its tasks)


_CURRENT: contextvars.ContextVar[Optional[Runtime]] = contextvars.ContextVar("spechestra_runtime", default=None)


def current() -> Runtime:
    return _CURRENT.get() or Runtime()


_Hook = TypeVar("_Hook")


def hook(value: Optional[_Hook], name: str) -> _Hook:
    """A hook that `complete()` always fills; missing means a task ran outside it (our bug)."""
    if value is None:
        raise RuntimeError(f"runtime hook {name!r} is unset: the task ran outside runtime.complete()")
    return value


@contextlib.contextmanager
def using(**fields: Any) -> Iterator[Runtime]:
    """The current runtime with `fields` replaced, for everything started inside the block."""
    runtime = replace(current(), **fields)
    token = _CURRENT.set(runtime)
    try:
        yield runtime
    finally:
        _CURRENT.reset(token)


def budget_for(max_llm_calls: Optional[int], max_tokens: Optional[int]) -> Budget:
    """The run's spending cap: the caller's runtime budget if it set one and these parameters ask
    for no other (a pipeline's compose and build share the pipeline's), else these parameters,
    else the Prefect Variables `spechestra_max_llm_calls` / `spechestra_max_tokens` (for
    deployments), else no cap."""
    shared = current().budget
    if shared is not None and (max_llm_calls, max_tokens) in ((None, None), (shared.max_calls, shared.max_tokens)):
        return shared
    return Budget(max_llm_calls if max_llm_calls is not None else _whole("spechestra_max_llm_calls"),
                  max_tokens if max_tokens is not None else _whole("spechestra_max_tokens"))


def _whole(variable: str) -> Optional[int]:
    raw = variable_value(variable)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"Prefect Variable {variable} must be a whole number, got {raw!r}",
                                 setting=variable) from None


def provider_from_settings(config: Optional[SpecSoloistConfig] = None, meter: Optional[Meter] = None,
                           explicit: Optional[LLMProvider] = None) -> MeteredProvider:
    """The provider a run chooses for itself: `explicit`, else `SPECHESTRA_PROVIDER` (or the
    Prefect Variable `spechestra_provider`) with the key from the Secret block named by
    `SPECHESTRA_API_KEY_BLOCK` and the model from the Variable `spechestra_model`, else
    SpecSoloist's configuration. Metered, each call labelled with its task run."""
    if explicit is not None:
        return resolve_provider(explicit, config, meter, label=current_task_run_name)
    block = settings.api_key_block
    return resolve_provider(None, config, meter, name=settings.provider or variable_value("spechestra_provider"),
                            api_key=secret_value(block) if block else None, model=variable_value("spechestra_model"),
                            label=current_task_run_name)


def provider_identity(config: Optional[SpecSoloistConfig] = None, explicit: Optional[LLMProvider] = None) -> str:
    """Which provider and model `provider_from_settings` would give, without making it."""
    if explicit is not None:
        return identity_of(explicit)
    return identity_of(None, config, name=settings.provider or variable_value("spechestra_provider"),
                       model=variable_value("spechestra_model"))


def lazy_provider(config: Optional[SpecSoloistConfig] = None, meter: Optional[Meter] = None,
                  explicit: Optional[LLMProvider] = None) -> LazyProvider:
    """`provider_from_settings`, made on its first call, that already knows its identity."""
    return LazyProvider(partial(provider_from_settings, config, meter, explicit),
                        identity=provider_identity(config, explicit))


def provider_for(project_dir: str) -> LLMProvider:
    """The provider handed over, else one chosen by settings for this project, made on its first
    call (so work that needs no LLM needs no key)."""
    rt = current()
    if rt.provider is not None:
        return rt.provider
    return lazy_provider(config_for(project_dir))


def config_for(project_dir: str) -> SpecSoloistConfig:
    """The caller's config when one was handed over, else SpecSoloist's from the environment."""
    return current().config or SpecSoloistConfig.from_env(project_dir)


def _touch(provider: Any) -> None:
    if isinstance(provider, LazyProvider):
        provider.get()


@contextlib.contextmanager
def complete(project_dir: str) -> Iterator[Runtime]:
    """Inside a flow: the current runtime with every default filled in (a provider chosen by
    settings, made on its first call; drafting and spec writing through it)."""
    rt = current()
    provider = provider_for(project_dir)
    with using(provider=provider, draft=rt.draft or partial(composing.draft_with, provider),
               write_spec=rt.write_spec or partial(composing.spec_with, provider),
               prepare=rt.prepare or partial(_touch, provider)) as filled:
        yield filled


def announce() -> None:
    """Called first thing in every flow: tell an in-process caller which run it started (only the
    top-level run: a stage of the pipeline is not the run the caller asked for); end a deployment
    run that keeps crashing (`zombies.check_resumes`); our errors in one console line each."""
    one_line_for_our_errors()
    zombies.check_resumes()
    on_run = current().on_run
    if on_run is not None and is_root_flow_run():
        on_run(current_flow_run_id() or "")


def report(name: str, phase: str) -> None:
    """Tell an in-process watcher (the terminal's live progress) what `name` is doing now."""
    watcher = current().progress
    if watcher is not None:
        watcher(name, phase)


def report_calls(budget: Optional[Budget]) -> None:
    """Tell a watcher that counts calls (`calls_made(n)`) the run's true count so far: the meter
    it holds sees only calls made in this process, not those of specs built on a cluster."""
    counter = getattr(current().progress, "calls_made", None)
    if counter is not None and budget is not None:
        counter(budget.calls_so_far())
