"""`spechestra` command line: a thin shell over the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import install_check

app = typer.Typer(help="Spec-driven development on Prefect: compose, build, perform.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console()
err = Console(stderr=True)


def reviewed(work, yes: bool):
    """Run `work`; unless --yes, answer its review and checkpoint pauses from this terminal."""
    if yes:
        return work()
    from .terminal_review import run_with_terminal_review
    return run_with_terminal_review(work, console)


def fail(message: str, code: int = 1):
    err.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)


@app.command()
def doctor(install: bool = typer.Option(False, "--install", help="Check only the installed files (make install does).")):
    """Check that 'import spechestra' loads this project's package (not specsoloist's old copy),
    and that Prefect's local database can be opened by the installed Prefect."""
    from .prefect_home import problem
    report = install_check.check()
    database = None if install else problem()
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
    from .composer import Composer
    from .report import print_composition
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
          test_timeout: float = typer.Option(120.0, "--test-timeout", min=1, help="Seconds one spec's tests may run.")):
    """Compile every spec to code and tests (one Prefect task per spec, cached by content)."""
    from .conductor import Conductor
    from .report import print_build
    conductor = Conductor(str(project), max_fixes=fixes, retries=retries, test_timeout=test_timeout)
    wanted = [s.strip() for s in specs.split(",") if s.strip()] if specs else None
    result = conductor.build(specs=wanted, incremental=not force, max_workers=workers)
    print_build(console, result, conductor)
    if not result.success:
        raise typer.Exit(1)


@app.command()
def graph(project: Path = typer.Option(Path("."), "--project", "-p", help="Project folder.")):
    """Print the spec dependency graph as Mermaid text."""
    from .conductor import Conductor
    console.print(Conductor(str(project)).graph_mermaid(), markup=False, highlight=False)


def parse_inputs(pairs: Optional[list[str]]) -> dict:
    """`k=v` pairs; each value is read as JSON when it parses (5, true, [1]) and as text otherwise."""
    import json
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
    from .conductor import Conductor
    from .report import print_perform
    conductor = Conductor(str(project))
    values = parse_inputs(inputs)
    conductor.plan_workflow(workflow, values)  # bad workflows fail here, before any run exists
    result = reviewed(lambda: conductor.perform(workflow, values, auto_approve=yes, step_timeout=timeout), yes)
    print_perform(console, result)
    if not result.success:
        raise typer.Exit(1)


@app.command()
def trace(flow_run_id: Optional[str] = typer.Argument(None, help="A perform flow run id."),
          workflow: Optional[str] = typer.Option(None, "--workflow", "-w", help="The newest run of this workflow."),
          as_json: bool = typer.Option(False, "--json", help="Print the trace as JSON.")):
    """Print a workflow run's trace from Prefect's run history, as a tree with timings."""
    import json
    from .trace import format_tree, get_trace_by_id, get_traces
    if bool(flow_run_id) == bool(workflow):
        fail("give either a FLOW_RUN_ID or --workflow NAME")
    if workflow:
        found = get_traces(workflow, limit=1)
        if not found:
            fail(f"no runs of workflow {workflow!r} in the run history (PREFECT_API_URL / PREFECT_HOME)")
        found = found[0]
    else:
        found = get_trace_by_id(flow_run_id)
    console.print(json.dumps(found, indent=2) if as_json else format_tree(found), markup=False, highlight=False)


@app.command()
def run(request: str = typer.Argument(..., help="What you want built, in plain English."),
        project: Path = typer.Option(Path("."), "--project", "-p", help="Project folder."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Skip reviews and checkpoints."),
        workflow: Optional[str] = typer.Option(None, "--workflow", help="Workflow spec to perform (default: the only one)."),
        inputs: Optional[list[str]] = typer.Option(None, "--input", "-i", help="Workflow input KEY=VALUE (repeatable)."),
        workers: int = typer.Option(4, "--workers", "-w", min=1, help="Specs built at the same time.")):
    """Compose, review, build and perform in one Prefect flow (compose_build_perform)."""
    from .pipeline_flow import run_pipeline
    from .report import print_pipeline
    values = parse_inputs(inputs)
    result = reviewed(lambda: run_pipeline(request, str(project), auto_accept=yes, workflow=workflow,
                                           inputs=values, max_workers=workers), yes)
    print_pipeline(console, result)
    if not result.success:
        raise typer.Exit(1)


@app.command()
def server(port: int = typer.Option(4200, "--port", help="Port on 127.0.0.1.")):
    """Start a Prefect server with the UI on 127.0.0.1 (prefect server start)."""
    from .operate import serve
    raise typer.Exit(serve(port=port))


@app.command()
def deploy(directory: Path = typer.Option(Path("."), "--dir", help="Folder with prefect.yaml (this checkout)."),
           pool: str = typer.Option("spechestra", "--pool", help="Process work pool to create or reuse.")):
    """Create the work pool (once) and deploy every flow in prefect.yaml (idempotent)."""
    from .operate import deploy as do_deploy
    for line in do_deploy(directory, pool):
        console.print(line)
    console.print(f"Now run the work: prefect worker start --pool {pool}")


@app.command()
def review(flow_run_id: str = typer.Argument(..., help="The paused run (or the pipeline run above it)."),
           approve: bool = typer.Option(False, "--approve", help="Approve and continue."),
           reject: bool = typer.Option(False, "--reject", help="Reject: nothing is written or built."),
           comment: Optional[str] = typer.Option(None, "--comment", help="Kept in the run's logs."),
           wait: float = typer.Option(0.0, "--wait", min=0, help="Seconds to wait for the run to pause.")):
    """Answer a paused review or checkpoint from the command line, as the UI's form does."""
    from .operate import answer_review
    if approve == reject:
        fail("give exactly one of --approve or --reject", code=2)
    console.print(answer_review(flow_run_id, approve, comment, wait))


@app.command()
def demo(directory: Path = typer.Option(Path("spechestra-demo"), "--dir", help="Where to create the demo project."),
         ):
    """Run the bundled demo offline (recorded LLM answers, no API key needed)."""
    from .demo import run_demo
    run_demo(directory, console)


def main(argv: Optional[list[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] != ["doctor"]:
        report = install_check.check()
        if not report.ok:
            err.print(report.explain())
            return 2
    try:
        code = app(args=args, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # click usage errors and our own failures: one line, non-zero
        import click
        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        err.print(f"[red]error:[/] {exc}")
        from .prefect_home import problem
        cause = problem()  # a server that cannot start shows up as a bare timeout
        if cause:
            err.print(cause, markup=False)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
