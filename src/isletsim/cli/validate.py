"""``isletsim validate``: run a validation suite and print every check."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from isletsim.cli._app import app
from isletsim.cli.simulate import fail


@app.command("validate")
def validate_command(
    suite: Annotated[str, typer.Option(help="Suite to run, e.g. model")] = "model",
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON")] = False,
) -> None:
    """Compare the model with independent references; exit 1 if a check fails."""
    from isletsim.validation import run_suite

    try:
        checks = run_suite(suite)
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    failed = [c for c in checks if not c.passed]
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in checks], indent=1))
    else:
        table = Table(title=f"validation suite {suite!r}")
        for col in ("check", "reference", "value", "tolerance", "units", "result"):
            table.add_column(col, overflow="fold")
        for c in checks:
            ref = f"{c.reference:.4g}" if isinstance(c.reference, float) else str(c.reference)
            table.add_row(
                c.name, ref, f"{c.value:.4g}", f"{c.tolerance:.4g}", c.units,
                "[green]pass[/]" if c.passed else "[bold red]FAIL[/]",
            )  # fmt: skip
        console = Console()
        console.print(table)
        sources = sorted({c.source for c in checks})
        for s in sources:
            console.print(f"source: {s}", highlight=False)
        console.print(f"{len(checks) - len(failed)}/{len(checks)} checks passed")
    if failed:
        raise typer.Exit(code=1)
