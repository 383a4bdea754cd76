"""``isletsim run PROTOCOL --out DIR``: run a virtual trial and write its tables and report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from isletsim.cli._app import app
from isletsim.cli.simulate import fail
from isletsim.trial import EnrolmentError, Protocol, ProtocolError, run_trial

console = Console(stderr=True)


@app.command("run")
def run_command(
    protocol: Annotated[
        Path, typer.Argument(help="Protocol file (TOML), e.g. protocols/forward_phase12.toml")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the tables (Parquet) and report.html")],
    seed: Annotated[int | None, typer.Option(help="Root seed (default: the protocol's)")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object on stdout")
    ] = False,
    report: Annotated[bool, typer.Option(help="Write DIR/report.html")] = True,
    compare_seeds: Annotated[
        int,
        typer.Option(
            help="Also run this many further seeds (S+1, S+2, ...) so that the published-vs-"
            "simulated table gives each figure's interval over seeds"
        ),
    ] = 0,
) -> None:
    """Run a virtual trial from a protocol file: screen, simulate, assess, derive endpoints."""
    try:
        proto = Protocol.load(protocol)
    except ProtocolError as exc:
        raise fail(str(exc)) from None
    if seed is not None and seed < 0:
        raise fail(f"--seed must be >= 0, got {seed}")
    if compare_seeds < 0:
        raise fail(f"--compare-seeds must be >= 0, got {compare_seeds}")
    days = proto.protocol.run_in_days + proto.protocol.follow_up_days + 1
    runs = 1 + compare_seeds
    with Progress(
        TextColumn(f"[bold]{proto.protocol.name}[/]"), BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task("simulating", total=days * runs)
        k = 0

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=days * (k + done / max(total, 1)))

        try:
            result = run_trial(proto, seed, progress=progress)
            others = []
            for k in range(1, runs):
                others.append(run_trial(proto, result.seed + k, progress=progress))
        except EnrolmentError as exc:
            raise fail(str(exc)) from None
        result.attach_seeds(others)
    result.to_parquet(out)
    if report:
        result.report(out)
    if json_out:
        sys.stdout.write(json.dumps(result.summary()) + "\n")
        return
    table = Table(title=f"{proto.protocol.name} (seed {result.seed}): endpoints")
    for col in ("arm", "endpoint", "value", "n/N", "95% CI"):
        table.add_column(col)
    for r in result.endpoints.itertuples(index=False):
        binary = "continuous" not in r.definition
        val = f"{100 * r.value:.0f} %" if binary else f"{r.value:.1f}"
        ci = (f"{100 * r.ci_low:.0f}-{100 * r.ci_high:.0f} %" if binary
              else f"{r.ci_low:.1f} to {r.ci_high:.1f}")  # fmt: skip
        table.add_row(r.arm, r.endpoint, val, f"{r.n:.0f}/{r.N}", ci)
    Console().print(table)
    Console().print(f"tables and report in {out} ({result.seconds:.1f} s)")
