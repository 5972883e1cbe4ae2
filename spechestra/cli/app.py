"""`spechestra` commands: a thin shell over the library.

Commands import the library inside their bodies: importing it means importing Prefect and
SpecSoloist (seconds), and `spechestra --help` and `spechestra doctor` must be fast, and `doctor`
must work when those very files are damaged. Errors are raised, never printed here: `main`
(in `cli/__init__`) turns each into one line and an exit code.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Optional

import typer

from .. import install_check
from ..core.options import MAX_FIXES, MAX_WORKERS, RETRIES, STEP_TIMEOUT, TEST_TIMEOUT
from ..errors import RunNotFound, UsageError
from . import doctor as checks
from .consoles import console, err
from .limits import limits as limits_command
from .server import server_app
from .serving import needs_server

app = typer.Typer(help="Spec-driven development on Prefect: compose, build, perform.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

PROJECT = typer.Option(Path("."), "--project", "-p", help="Project folder.")
WORKERS = typer.Option(MAX_WORKERS.default, "--workers", "-w", min=MAX_WORKERS.ge, help=MAX_WORKERS.description)
MAX_CALLS = typer.Option(None, "--max-llm-calls", min=0, help="Hard cap on LLM calls: none starts past it (exit 3).")
MAX_TOKENS = typer.Option(None, "--max-tokens", min=0, help="Hard cap on tokens: no call starts once reached (exit 3).")
INPUTS = typer.Option(None, "--input", "-i", help="Workflow input KEY=VALUE (repeatable).")


def reviewed(work, yes: bool):
    """Run `work`; unless --yes, answer its review and checkpoint pauses from this terminal."""
    if yes:
        return work()
    from .terminal_review import run_with_terminal_review
    return run_with_terminal_review(work, console)


def exit_for(outcome) -> None:
    """The exit code of a run that did not succeed: 3 when it stopped at its spending cap."""
    from ..core.models import Outcome
    raise typer.Exit(3 if outcome is Outcome.BUDGET_REACHED else 1)


@app.command()
def doctor(install: bool = typer.Option(False, "--install", help="Check only the installed files (make install does).")):
    """Check that 'import spechestra' loads this project's package (not specsoloist's old copy),
    that every setting can be used, that Prefect's local database can be opened by the
    installed Prefect, and how generated code will be contained (the sandbox)."""
    report = install_check.check()
    settings_problems = checks.bad_settings()
    database = None if install else checks.problem()
    contained, refused = (None, None) if install or settings_problems else checks.sandbox_line()
    if report.ok and database is None and not settings_problems and refused is None:
        console.print(f"[green]{report.explain()}[/]")
        console.print("[green]settings OK[/] (spechestra settings lists them)")
        if contained:
            console.print(contained, highlight=False)
        if not install:
            console.print(checks.llm_line(), highlight=False)
        else:  # once per Prefect version: a new PREFECT_HOME's first server start skips 7 s of migrations
            from ..server.fresh_database import make_template
            from ..server.local import prefect_exe
            made = make_template(prefect_exe())
            console.print(f"new PREFECT_HOME databases start from {made} (migrated once)" if made else
                          "new PREFECT_HOME databases are migrated by Prefect at their first start (no template)",
                          highlight=False, markup=False)
        return
    err.print(report.explain() if not report.ok else f"[green]{report.explain()}[/]")
    for line in settings_problems:
        err.print(f"[red]setting:[/] {line}", highlight=False)
    if database:
        err.print(database, markup=False)
    if refused:
        err.print(f"[red]sandbox:[/] {refused}", highlight=False)
    raise typer.Exit(1)


@app.command("settings")
def show_settings(as_json: bool = typer.Option(False, "--json", help="Print them as JSON (for scripts)."),
                  prefect: bool = typer.Option(True, "--prefect/--no-prefect",
                                               help="Include Prefect's own settings (imports Prefect).")):
    """Every setting: its value as used (keys hidden), where it came from, and what it does."""
    from ..settings import rows
    from .report import print_settings
    found = rows(with_prefect=prefect)
    if as_json:
        console.print(json.dumps([vars(r) for r in found], indent=2), markup=False, highlight=False, soft_wrap=True)
    else:
        print_settings(console, found)


@app.command()
@needs_server()
def compose(request: str = typer.Argument(..., help="What you want built, in plain English."),
            project: Path = typer.Option(Path("."), "--project", "-p", help="Project folder (specs go to its src/)."),
            yes: bool = typer.Option(False, "--yes", "-y", help="Skip the reviews (auto-accept)."),
            max_llm_calls: Optional[int] = MAX_CALLS, max_tokens: Optional[int] = MAX_TOKENS):
    """Draft an architecture and write specs, reviewing both (unless --yes)."""
    from ..composer import Composer
    from .report import print_composition
    composer = Composer(str(project))
    result = reviewed(lambda: composer.compose(request, auto_accept=yes, max_llm_calls=max_llm_calls,
                                               max_tokens=max_tokens), yes)
    print_composition(console, result, composer)
    if result.cancelled or not result.ready_for_build:
        exit_for(result.outcome)


@app.command()
@needs_server()
def build(project: Path = PROJECT,
          specs: Optional[str] = typer.Option(None, "--specs", help="Comma-separated spec names (default: all)."),
          force: bool = typer.Option(False, "--force", help="Ignore the cache and rebuild everything."),
          workers: int = WORKERS,
          fixes: int = typer.Option(MAX_FIXES.default, "--fixes", min=MAX_FIXES.ge, help=MAX_FIXES.description),
          retries: int = typer.Option(RETRIES.default, "--retries", min=RETRIES.ge, help=RETRIES.description),
          test_timeout: float = typer.Option(TEST_TIMEOUT.default, "--test-timeout", min=TEST_TIMEOUT.ge,
                                             help=TEST_TIMEOUT.description),
          lock_timeout: Optional[float] = typer.Option(None, "--lock-timeout", min=0,
                                                       help="Seconds to wait for another build of this project "
                                                            "(default SPECHESTRA_LOCK_TIMEOUT, 600; 0 = refuse at once)."),
          max_llm_calls: Optional[int] = MAX_CALLS, max_tokens: Optional[int] = MAX_TOKENS):
    """Compile every spec to code and tests: a Prefect task run per spec built, unchanged specs reused
    from the cache in one."""
    from ..conductor import Conductor
    from ..errors import SpechestraError
    from .progress import LiveProgress
    from .report import print_build
    conductor = Conductor(str(project), max_fixes=fixes, retries=retries, test_timeout=test_timeout)
    wanted = [s.strip() for s in specs.split(",") if s.strip()] if specs else None
    try:
        total = len(conductor.dependencies(wanted))
    except SpechestraError:  # a bad plan is reported by the build itself, below
        total = 0
    with LiveProgress(console, total, "specs", conductor.meter) as progress:
        result = conductor.build(specs=wanted, incremental=not force, max_workers=workers, lock_timeout=lock_timeout,
                                 progress=progress, max_llm_calls=max_llm_calls, max_tokens=max_tokens)
    print_build(console, result, conductor, err)
    if not result.success:
        exit_for(result.outcome)


@app.command()
def status(project: Path = PROJECT,
           as_json: bool = typer.Option(False, "--json", help="Print the status as JSON (for scripts).")):
    """Drift between specs and built code: changed specs, hand-edited or missing files, failures.
    Exits 1 when anything drifted."""
    from ..conductor import Conductor
    from ..core.status import project_status
    from ..errors import ProjectError
    from .report import print_status
    conductor = Conductor(str(project))
    if not conductor.spec_names():
        raise ProjectError(f"no specs in {conductor.project_dir} (looked in {conductor.specs_dir})",
                           path=conductor.specs_dir)
    llm = conductor.llm_identity()
    jobs, _ = conductor.plan(llm=llm)
    found = project_status(conductor, {n: j.cache_key for n, j in jobs.items()})
    if as_json:
        console.print(json.dumps([s.as_dict() for s in found], indent=2), markup=False, highlight=False)
    else:
        print_status(console, found, llm)
    if any(s.drifted for s in found):
        raise typer.Exit(1)


@app.command()
def graph(project: Path = PROJECT):
    """Print the spec dependency graph as Mermaid text."""
    from ..core.planning import Project
    console.print(Project(str(project)).graph_mermaid(), markup=False, highlight=False)


def flow_run_id_arg(value: str) -> str:
    """A flow run id must be a UUID: say so before asking any server."""
    import uuid
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise UsageError(f"{value!r} is not a flow run id (ids look like 3f2c5d4e-...; `spechestra trace "
                         "--workflow W` finds the newest run of a workflow)") from None


def parse_inputs(pairs: Optional[list[str]]) -> dict:
    """`k=v` pairs; each value is read as JSON when it parses (5, true, [1]) and as text otherwise."""
    values = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--input {pair!r} is not KEY=VALUE")
        try:
            values[key.strip()] = json.loads(raw)
        except ValueError:
            values[key.strip()] = raw
    return values


def _inputs_parse(inputs: Optional[list[str]] = None, **_) -> None:
    parse_inputs(inputs)


@app.command()
@needs_server(validate=_inputs_parse)
def perform(workflow: str = typer.Argument(..., help="Name of the workflow spec to run."),
            project: Path = typer.Option(Path("."), "--project", "-p", help="Project folder (built first)."),
            inputs: Optional[list[str]] = INPUTS,
            yes: bool = typer.Option(False, "--yes", "-y", help="Run checkpoint steps without asking."),
            timeout: float = typer.Option(STEP_TIMEOUT.default, "--step-timeout", min=STEP_TIMEOUT.ge,
                                          help=STEP_TIMEOUT.description)):
    """Run a built workflow spec step by step; prints the trace."""
    from ..conductor import Conductor
    from .progress import LiveProgress
    from .report import print_perform
    conductor = Conductor(str(project))
    values = parse_inputs(inputs)
    plan = conductor.plan_workflow(workflow, values)  # bad workflows fail here, before any run exists
    asks = not yes and any(step.checkpoint for step in plan.steps)  # only checkpoints need a terminal
    with LiveProgress(console, len(plan.steps), "steps", live=not asks) as progress:
        result = reviewed(lambda: conductor.perform(workflow, values, auto_approve=yes, step_timeout=timeout,
                                                    progress=progress), not asks)
    print_perform(console, result)
    if not result.success:
        raise typer.Exit(1)


def _one_trace(flow_run_id: Optional[str], workflow: Optional[str], **_) -> None:
    if bool(flow_run_id) == bool(workflow):
        raise UsageError("give either a FLOW_RUN_ID or --workflow NAME")
    if flow_run_id:
        flow_run_id_arg(flow_run_id)


@app.command()
@needs_server(watch=False, validate=_one_trace)
def trace(flow_run_id: Optional[str] = typer.Argument(None, help="A perform flow run id."),
          workflow: Optional[str] = typer.Option(None, "--workflow", help="The newest run of this workflow."),
          as_json: bool = typer.Option(False, "--json", help="Print the trace as JSON.")):
    """Print a workflow run's trace from Prefect's run history, as a tree with timings."""
    from ..core.tracing import format_tree
    from ..orchestration.history import get_trace_by_id, get_traces
    if workflow:
        runs = get_traces(workflow, limit=1)
        if not runs:
            raise RunNotFound(f"no runs of workflow {workflow!r} in the run history (PREFECT_API_URL / PREFECT_HOME)")
        found = runs[0]
    else:
        found = get_trace_by_id(flow_run_id_arg(flow_run_id or ""))
    console.print(json.dumps(found, indent=2) if as_json else format_tree(found), markup=False, highlight=False)


@app.command()
@needs_server(validate=_inputs_parse)
def run(request: str = typer.Argument(..., help="What you want built, in plain English."),
        project: Path = PROJECT,
        yes: bool = typer.Option(False, "--yes", "-y", help="Skip reviews and checkpoints."),
        workflow: Optional[str] = typer.Option(None, "--workflow", help="Workflow spec to perform (default: the only one)."),
        inputs: Optional[list[str]] = INPUTS, workers: int = WORKERS,
        max_llm_calls: Optional[int] = MAX_CALLS, max_tokens: Optional[int] = MAX_TOKENS):
    """Compose, review, build and perform in one Prefect flow (compose_build_perform)."""
    from ..pipeline import run_pipeline
    from .report import print_pipeline
    values = parse_inputs(inputs)
    result = reviewed(lambda: run_pipeline(request, str(project), auto_accept=yes, workflow=workflow,
                                           inputs=values, max_workers=workers, max_llm_calls=max_llm_calls,
                                           max_tokens=max_tokens), yes)
    print_pipeline(console, result)
    if not result.success:
        exit_for(result.outcome)


@app.command()
@needs_server(watch=False)
def deploy(directory: Path = typer.Option(Path("."), "--dir", help="Folder with prefect.yaml (this checkout)."),
           pool: str = typer.Option("spechestra", "--pool", help="Process work pool to create or reuse.")):
    """Create the work pool (once) and deploy every flow in prefect.yaml (idempotent)."""
    from ..orchestration.deploying import deploy as deploy_flows
    for line in deploy_flows(directory, pool):
        console.print(line)
    console.print(f"Now run the work: prefect worker start --pool {pool}")


def _one_answer(flow_run_id: str, approve: bool, reject: bool, **_) -> None:
    if approve == reject:
        raise UsageError("give exactly one of --approve or --reject")
    flow_run_id_arg(flow_run_id)


@app.command()
@needs_server(watch=False, validate=_one_answer)
def review(flow_run_id: str = typer.Argument(..., help="The paused run (or the pipeline run above it)."),
           approve: bool = typer.Option(False, "--approve", help="Approve and continue."),
           reject: bool = typer.Option(False, "--reject", help="Reject: nothing is written or built."),
           comment: Optional[str] = typer.Option(None, "--comment", help="Kept in the run's logs."),
           wait: float = typer.Option(0.0, "--wait", min=0, help="Seconds to wait for the run to pause.")):
    """Answer a paused review or checkpoint from the command line, as the UI's form does."""
    from ..orchestration.pauses import answer_review
    console.print(answer_review(flow_run_id_arg(flow_run_id), approve, comment, wait))


@app.command()
@needs_server(watch=False)
def demo(directory: Path = typer.Option(Path("spechestra-demo"), "--dir", help="Where to create the demo project.")):
    """Run the bundled demo offline (recorded LLM answers, no API key needed)."""
    from .demo import run_demo
    run_demo(directory, console)


app.command("limits")(limits_command)
app.add_typer(server_app, name="server")


def _listed_on_one_line(typer_app: typer.Typer) -> None:
    """`spechestra --help` lists each command by its docstring's first paragraph, and Typer's rich
    listing keeps that paragraph's line breaks (a command's own --help reflows them): the listing
    broke mid-sentence into ragged rows. Each gets its paragraph as one line, wrapped to the
    terminal instead."""
    for info in typer_app.registered_commands:
        doc = info.help or (info.callback.__doc__ if info.callback else None)
        if info.short_help is None and doc:
            info.short_help = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


_listed_on_one_line(app)
_listed_on_one_line(server_app)
