"""`spechestra` commands: a thin shell over the library.

Each command imports the library inside its body (marked "deferred"): importing it means
importing Prefect and SpecSoloist (seconds), and `spechestra --help` and `spechestra doctor`
must work fast, and `doctor` must work when those very files are damaged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .. import install_check
from ..core import local_server
from . import doctor as checks
from . import operate
from .watchdog import watch_server

app = typer.Typer(help="Spec-driven development on Prefect: compose, build, perform.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console()
err = Console(stderr=True)


def reviewed(work, yes: bool):
    """Run `work`; unless --yes, answer its review and checkpoint pauses from this terminal."""
    if yes:
        return work()
    from .terminal_review import run_with_terminal_review  # deferred (module docstring)
    return run_with_terminal_review(work, console)


def use_server() -> None:
    """Point this command at its Prefect API before Prefect is imported: PREFECT_API_URL, else
    the managed local server (started in the background if need be), else temporary mode."""
    # A temporary server boots while the command imports and plans; the first API use waits for it.
    url = local_server.api_url_for_this_process(say=lambda line: err.print(line, style="dim", highlight=False),
                                                wait=False)
    if url:
        os.environ["PREFECT_API_URL"] = url


def fail(message: str, code: int = 1):
    err.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)


@app.command()
def doctor(install: bool = typer.Option(False, "--install", help="Check only the installed files (make install does).")):
    """Check that 'import spechestra' loads this project's package (not specsoloist's old copy),
    and that Prefect's local database can be opened by the installed Prefect."""
    report = install_check.check()
    database = None if install else checks.problem()
    if report.ok and database is None:
        console.print(f"[green]{report.explain()}[/]")
        return
    err.print(report.explain() if not report.ok else f"[green]{report.explain()}[/]")
    if database:
        err.print(database, markup=False)
    raise typer.Exit(1)


@app.command()
def compose(request: str = typer.Argument(..., help="What you want built, in plain English."),
            project: Path = typer.Option(Path("."), "--project", "-p", help="Project folder (specs go to its src/)."),
            yes: bool = typer.Option(False, "--yes", "-y", help="Skip the reviews (auto-accept).")):
    """Draft an architecture and write specs, reviewing both (unless --yes)."""
    use_server()
    watch_server(err)
    from ..composer import Composer  # deferred (module docstring)
    from .report import print_composition  # deferred (module docstring)
    composer = Composer(str(project))
    result = reviewed(lambda: composer.compose(request, auto_accept=yes), yes)
    print_composition(console, result, composer)
    if result.cancelled or not result.ready_for_build:
        raise typer.Exit(1)


@app.command()
def build(project: Path = typer.Option(Path("."), "--project", "-p", help="Project folder."),
          specs: Optional[str] = typer.Option(None, "--specs", help="Comma-separated spec names (default: all)."),
          force: bool = typer.Option(False, "--force", help="Ignore the cache and rebuild everything."),
          workers: int = typer.Option(4, "--workers", "-w", min=1, help="Specs built at the same time."),
          fixes: int = typer.Option(2, "--fixes", min=0, help="Fix attempts per spec after failing tests."),
          retries: int = typer.Option(3, "--retries", min=0, help="Retries of an LLM call after a transient fault."),
          test_timeout: float = typer.Option(120.0, "--test-timeout", min=1, help="Seconds one spec's tests may run."),
          lock_timeout: Optional[float] = typer.Option(None, "--lock-timeout", min=0,
                                                       help="Seconds to wait for another build of this project "
                                                            "(default 600, SPECHESTRA_LOCK_TIMEOUT; 0 = refuse at once)."),
          max_llm_calls: Optional[int] = typer.Option(None, "--max-llm-calls", min=0,
                                                      help="Hard cap on LLM calls: none starts past it (exit 3)."),
          max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=0,
                                                   help="Hard cap on tokens: no call starts once reached (exit 3).")):
    """Compile every spec to code and tests: a Prefect task run per spec built, unchanged specs reused
    from the cache in one."""
    use_server()
    watch_server(err)
    from ..conductor import Conductor  # deferred (module docstring)
    from .report import print_build  # deferred (module docstring)
    if workers < 1:
        fail(f"--workers must be at least 1, got {workers}", code=2)
    conductor = Conductor(str(project), max_fixes=fixes, retries=retries, test_timeout=test_timeout)
    wanted = [s.strip() for s in specs.split(",") if s.strip()] if specs else None
    from .progress import LiveProgress  # deferred (module docstring)
    try:
        total = len(conductor.dependencies(wanted))
    except Exception:  # a bad plan is reported by the build itself, below
        total = 0
    with LiveProgress(console, total, "specs", conductor.meter) as progress:
        result = conductor.build(specs=wanted, incremental=not force, max_workers=workers, lock_timeout=lock_timeout,
                                 progress=progress, max_llm_calls=max_llm_calls, max_tokens=max_tokens)
    print_build(console, result, conductor, err)
    if not result.success:
        raise typer.Exit(3 if result.outcome.value == "budget reached" else 1)


@app.command()
def status(project: Path = typer.Option(Path("."), "--project", "-p", help="Project folder."),
           as_json: bool = typer.Option(False, "--json", help="Print the status as JSON (for scripts).")):
    """Drift between specs and built code: changed specs, hand-edited or missing files, failures.
    Exits 1 when anything drifted."""
    from ..conductor import Conductor  # deferred (module docstring)
    from ..core.status import project_status  # deferred (module docstring)
    from .report import print_status  # deferred (module docstring)
    conductor = Conductor(str(project))
    if not conductor.spec_names():
        fail(f"no specs in {conductor.project_dir} (looked in {conductor.specs_dir})")
    jobs, _ = conductor.plan(llm=conductor.llm_identity())
    found = project_status(conductor, {n: j.cache_key for n, j in jobs.items()})
    if as_json:
        console.print(json.dumps([s.as_dict() for s in found], indent=2), markup=False, highlight=False)
    else:
        print_status(console, found)
    if any(s.drifted for s in found):
        raise typer.Exit(1)


@app.command()
def graph(project: Path = typer.Option(Path("."), "--project", "-p", help="Project folder.")):
    """Print the spec dependency graph as Mermaid text."""
    from ..core.planning import Project  # deferred (module docstring)
    console.print(Project(str(project)).graph_mermaid(), markup=False, highlight=False)


def flow_run_id_arg(value: str) -> str:
    """A flow run id must be a UUID: say so before asking any server."""
    import uuid
    try:
        return str(uuid.UUID(value))
    except ValueError:
        fail(f"{value!r} is not a flow run id (ids look like 3f2c5d4e-...; `spechestra trace --workflow W` "
             "finds the newest run of a workflow)", code=2)


def parse_inputs(pairs: Optional[list[str]]) -> dict:
    """`k=v` pairs; each value is read as JSON when it parses (5, true, [1]) and as text otherwise."""
    values = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--input {pair!r} is not KEY=VALUE", code=2)
        try:
            values[key.strip()] = json.loads(raw)
        except ValueError:
            values[key.strip()] = raw
    return values


@app.command()
def perform(workflow: str = typer.Argument(..., help="Name of the workflow spec to run."),
            project: Path = typer.Option(Path("."), "--project", "-p", help="Project folder (built first)."),
            inputs: Optional[list[str]] = typer.Option(None, "--input", "-i", help="Workflow input KEY=VALUE (repeatable)."),
            yes: bool = typer.Option(False, "--yes", "-y", help="Run checkpoint steps without asking."),
            timeout: float = typer.Option(300.0, "--step-timeout", min=0.1, help="Seconds one step may run.")):
    """Run a built workflow spec step by step; prints the trace."""
    use_server()
    watch_server(err)
    from ..conductor import Conductor  # deferred (module docstring)
    from .report import print_perform  # deferred (module docstring)
    conductor = Conductor(str(project))
    values = parse_inputs(inputs)
    plan = conductor.plan_workflow(workflow, values)  # bad workflows fail here, before any run exists
    asks = not yes and any(step.checkpoint for step in plan.steps)  # only checkpoints need a terminal
    from .progress import LiveProgress  # deferred (module docstring)
    with LiveProgress(console, len(plan.steps), "steps", live=not asks) as progress:
        result = reviewed(lambda: conductor.perform(workflow, values, auto_approve=yes, step_timeout=timeout,
                                                    progress=progress), not asks)
    print_perform(console, result)
    if not result.success:
        raise typer.Exit(1)


@app.command()
def trace(flow_run_id: Optional[str] = typer.Argument(None, help="A perform flow run id."),
          workflow: Optional[str] = typer.Option(None, "--workflow", "-w", help="The newest run of this workflow."),
          as_json: bool = typer.Option(False, "--json", help="Print the trace as JSON.")):
    """Print a workflow run's trace from Prefect's run history, as a tree with timings."""
    use_server()
    from ..core.tracing import format_tree  # deferred (module docstring)
    from ..orchestration.history import get_trace_by_id, get_traces  # deferred (module docstring)
    if bool(flow_run_id) == bool(workflow):
        fail("give either a FLOW_RUN_ID or --workflow NAME")
    if workflow:
        found = get_traces(workflow, limit=1)
        if not found:
            fail(f"no runs of workflow {workflow!r} in the run history (PREFECT_API_URL / PREFECT_HOME)")
        found = found[0]
    else:
        found = get_trace_by_id(flow_run_id_arg(flow_run_id))
    console.print(json.dumps(found, indent=2) if as_json else format_tree(found), markup=False, highlight=False)


@app.command()
def run(request: str = typer.Argument(..., help="What you want built, in plain English."),
        project: Path = typer.Option(Path("."), "--project", "-p", help="Project folder."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Skip reviews and checkpoints."),
        workflow: Optional[str] = typer.Option(None, "--workflow", help="Workflow spec to perform (default: the only one)."),
        inputs: Optional[list[str]] = typer.Option(None, "--input", "-i", help="Workflow input KEY=VALUE (repeatable)."),
        workers: int = typer.Option(4, "--workers", "-w", min=1, help="Specs built at the same time."),
        max_llm_calls: Optional[int] = typer.Option(None, "--max-llm-calls", min=0,
                                                    help="Hard cap on the build's LLM calls (exit 3)."),
        max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=0,
                                                 help="Hard cap on the build's tokens (exit 3).")):
    """Compose, review, build and perform in one Prefect flow (compose_build_perform)."""
    use_server()
    watch_server(err)
    from ..pipeline import run_pipeline  # deferred (module docstring)
    from .report import print_pipeline  # deferred (module docstring)
    values = parse_inputs(inputs)
    if workers < 1:
        fail(f"--workers must be at least 1, got {workers}", code=2)
    result = reviewed(lambda: run_pipeline(request, str(project), auto_accept=yes, workflow=workflow,
                                           inputs=values, max_workers=workers, max_llm_calls=max_llm_calls,
                                           max_tokens=max_tokens), yes)
    print_pipeline(console, result)
    if not result.success:
        raise typer.Exit(3 if result.outcome.value == "budget reached" else 1)


@app.command()
def server(action: Optional[str] = typer.Argument(None, help="start | stop | status; none: run in the foreground."),
           port: int = typer.Option(4200, "--port", help="Port on 127.0.0.1 (another free one if taken).")):
    """The local Prefect server (API + UI) that commands use: in the foreground, or managed in the
    background (`start`, `stop`, `status`); commands start the managed one when they need it."""
    if action is None:
        raise typer.Exit(operate.serve(port=port))
    if action == "start":
        info = local_server.start(port=port, say=lambda line: err.print(line, style="dim", highlight=False))
        console.print(f"running: {info.ui_url} (pid {info.pid}, PREFECT_HOME {info.home}, log {info.log})")
    elif action == "stop":
        info = local_server.stop()
        console.print(f"stopped the server on port {info.port} (pid {info.pid})" if info else
                      f"no managed server for PREFECT_HOME {local_server.prefect_home()}")
    elif action == "status":
        info = local_server.running()
        if info is None:
            console.print(f"not running (PREFECT_HOME {local_server.prefect_home()}; mode {local_server.mode()})")
            raise typer.Exit(1)
        console.print(f"running: {info.ui_url} (pid {info.pid}, PREFECT_HOME {info.home}, log {info.log})")
    else:
        fail(f"unknown action {action!r}: use start, stop or status (or nothing, for the foreground)", code=2)


@app.command()
def deploy(directory: Path = typer.Option(Path("."), "--dir", help="Folder with prefect.yaml (this checkout)."),
           pool: str = typer.Option("spechestra", "--pool", help="Process work pool to create or reuse.")):
    """Create the work pool (once) and deploy every flow in prefect.yaml (idempotent)."""
    use_server()
    from ..orchestration.deploying import deploy as deploy_flows  # deferred (module docstring)
    for line in deploy_flows(directory, pool):
        console.print(line)
    console.print(f"Now run the work: prefect worker start --pool {pool}")


@app.command()
def review(flow_run_id: str = typer.Argument(..., help="The paused run (or the pipeline run above it)."),
           approve: bool = typer.Option(False, "--approve", help="Approve and continue."),
           reject: bool = typer.Option(False, "--reject", help="Reject: nothing is written or built."),
           comment: Optional[str] = typer.Option(None, "--comment", help="Kept in the run's logs."),
           wait: float = typer.Option(0.0, "--wait", min=0, help="Seconds to wait for the run to pause.")):
    """Answer a paused review or checkpoint from the command line, as the UI's form does."""
    use_server()
    from ..orchestration.pauses import answer_review  # deferred (module docstring)
    if approve == reject:
        fail("give exactly one of --approve or --reject", code=2)
    console.print(answer_review(flow_run_id_arg(flow_run_id), approve, comment, wait))


@app.command()
def demo(directory: Path = typer.Option(Path("spechestra-demo"), "--dir", help="Where to create the demo project."),
         ):
    """Run the bundled demo offline (recorded LLM answers, no API key needed)."""
    use_server()
    from .demo import run_demo  # deferred (module docstring)
    run_demo(directory, console)
