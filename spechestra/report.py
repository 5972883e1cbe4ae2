"""Rich terminal output for results (kept out of the CLI so the CLI stays a thin shell)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def ui_hint(flow_run_id: str | None) -> str:
    if not flow_run_id:
        return ""
    return (f"Flow run {flow_run_id}. To browse it: `prefect server start`, then open "
            f"http://127.0.0.1:4200/runs/flow-run/{flow_run_id}")


def print_composition(console: Console, result, composer) -> None:
    table = Table(title="Composition")
    for column in ("component", "type", "depends on", "spec"):
        table.add_column(column)
    created = {p for p in result.spec_paths}
    for comp in result.architecture.components:
        if comp.name in result.failed:
            status = f"[red]failed[/]: {result.failed[comp.name]}"
        elif comp.name in result.skipped:
            status = "[dim]exists, kept[/]"
        elif any(p.endswith(f"{comp.name}.spec.md") for p in created):
            status = "[green]written[/]"
        else:
            status = "-"
        table.add_row(comp.name, comp.type, ", ".join(comp.dependencies) or "-", status)
    console.print(table)
    if result.cancelled:
        console.print(f"[yellow]Cancelled:[/] {result.message}")
    elif result.message:
        console.print(f"[yellow]{result.message}[/]")
    console.print(f"Specs are in {composer.specs_dir}")
    summary = composer.meter.summary()
    console.print(f"LLM calls: {summary['calls']} (~{summary['approx_tokens']} tokens)")
    if result.flow_run_id:
        console.print(ui_hint(result.flow_run_id))
