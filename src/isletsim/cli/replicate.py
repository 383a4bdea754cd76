"""``isletsim replicate PROTOCOL --n N --seed S --out DIR``: replicate trials and their OC."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from isletsim.cli._app import app
from isletsim.cli.simulate import fail
from isletsim.trial import Protocol, ProtocolError
from isletsim.trial.replicates import SWEEP_KEYS, ReplicateError, run_replicates

console = Console(stderr=True)


def parse_sweep(items: list[str]) -> dict[str, list[Any]]:
    """``["n=20,30", "dose=0.4e9,full"]`` -> ``{"n": ["20", "30"], "dose": [...]}``.

    Raises
    ------
    ReplicateError
        An item without ``=``, an unknown or repeated key, or an empty value.
    """
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep:
            raise ReplicateError(f"--sweep {item!r}: expected KEY=V1,V2,... (keys {SWEEP_KEYS})")
        if key not in SWEEP_KEYS:
            raise ReplicateError(f"--sweep {item!r}: unknown key {key!r}; allowed: {SWEEP_KEYS}")
        if key in out:
            raise ReplicateError(f"--sweep {key}: given twice")
        vals = [v.strip() for v in values.split(",")]
        if not vals or any(not v for v in vals):
            raise ReplicateError(f"--sweep {item!r}: empty value")
        out[key] = vals
    return out


@app.command("replicate")
def replicate_command(
    protocol: Annotated[Path, typer.Argument(help="Protocol file (TOML)")],
    n: Annotated[int, typer.Option("--n", help="Replicate trials per design point")],
    out: Annotated[Path, typer.Option(help="Checkpoint and report directory")],
    seed: Annotated[int | None, typer.Option(help="Root seed (default: the protocol's)")] = None,
    executor: Annotated[str, typer.Option(help="local (process pool) or dask")] = "local",
    address: Annotated[
        str | None, typer.Option(help="Dask scheduler, e.g. tcp://scheduler:8786")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Replicates per task")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a run in --out")] = False,
    sweep: Annotated[
        list[str] | None,
        typer.Option(help="KEY=V1,V2 (n: islet-arm size; dose: islet-arm dose); repeatable"),
    ] = None,
    success_threshold: Annotated[
        float, typer.Option(help="Binary endpoint succeeds when its lower 95% bound exceeds this")
    ] = 0.5,
    report: Annotated[bool, typer.Option(help="Write DIR/replicates.html")] = True,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (timing and OC table)")
    ] = False,
) -> None:
    """Run replicate virtual trials of a design (or a sweep): operating characteristics."""
    try:
        proto = Protocol.load(protocol)
        grid = parse_sweep(sweep or [])
    except (ProtocolError, ReplicateError) as exc:
        raise fail(str(exc)) from None
    if executor not in ("local", "dask"):
        raise fail(f"--executor must be 'local' or 'dask', got {executor!r}")
    seed = proto.protocol.seed if seed is None else seed

    with Progress(
        TextColumn(f"[bold]{proto.protocol.name}[/]"), BarColumn(), MofNCompleteColumn(),
        TextColumn("replicates"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task("replicates", total=None, rate="")
        start: dict[str, float] = {}

        def progress(done: int, total: int, patient_days: float) -> None:
            now = time.perf_counter()
            if not start:
                start.update(t=now, days=patient_days)
            dt = now - start["t"]
            rate = (patient_days - start["days"]) / dt if dt > 0 else 0.0
            bar.update(task, completed=done, total=total, rate=f"{rate:,.0f} patient-days/s")

        try:
            oc = run_replicates(
                proto, n, seed, executor=executor, address=address,  # type: ignore[arg-type]
                workers=workers, batch_size=batch_size, out=out, resume=resume,
                progress=progress, sweep=grid or None, success_threshold=success_threshold,
            )  # fmt: skip
        except (ProtocolError, ReplicateError) as exc:
            raise fail(str(exc)) from None
    if report:
        oc.report(out)
    if json_out:
        sys.stdout.write(oc.to_json() + "\n")
        return
    console.print(repr(oc), highlight=False, markup=False)
    rate = oc.patient_days_run / oc.seconds if oc.seconds > 0 else 0.0
    console.print(
        f"{oc.patient_days_run:,.0f} patient-days in {oc.seconds:.1f} s ({rate:,.0f}/s); "
        f"results in {out}",
        highlight=False,
        markup=False,
    )
