"""``isletsim simulate``: run virtual patients on a therapy and write a per-minute table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from isletsim.cli._app import app
from isletsim.engine import simulate as run_simulation
from isletsim.meals import DailyMeals, MealSpecError
from isletsim.params import COHORTS, UnknownPatientError, load_cohort, select_patients
from isletsim.therapy import THERAPIES

err_console = Console(stderr=True)

#: Show a progress bar when a run is longer than this many patient-days.
PROGRESS_MIN_PATIENT_DAYS = 200


def fail(message: str) -> typer.Exit:
    """Print a one-line error to stderr and return the exit to raise (code 2)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


@app.command("simulate")
def simulate_command(
    patients: Annotated[
        str | None, typer.Option(help="Comma-separated patient names, e.g. adult#001,child#003")
    ] = None,
    cohort: Annotated[
        str | None, typer.Option(help=f"Whole cohort instead of --patients: {', '.join(COHORTS)}")
    ] = None,
    days: Annotated[float, typer.Option(help="Days to simulate")] = 1.0,
    meals: Annotated[
        str, typer.Option(help="Daily meals HH:MM=grams, comma separated")
    ] = "07:00=45,12:00=70,18:00=80",
    therapy: Annotated[
        str, typer.Option(help=f"Therapy policy: {' | '.join(THERAPIES)}")
    ] = "basal-bolus",
    out: Annotated[
        Path | None, typer.Option(help="Write the per-minute table to this Parquet file")
    ] = None,
) -> None:
    """Simulate virtual patients with type 1 diabetes and print a short summary."""
    if (patients is None) == (cohort is None):
        raise fail("give exactly one of --patients or --cohort")
    try:
        if cohort is not None:
            table = load_cohort(cohort)
        else:
            names = [n.strip() for n in patients.split(",") if n.strip()]  # type: ignore[union-attr]
            table = select_patients(names)
        meal_plan = DailyMeals.parse(meals)
    except (UnknownPatientError, MealSpecError) as exc:
        raise fail(str(exc)) from None
    if therapy not in THERAPIES:
        raise fail(f"unknown therapy {therapy!r}; choose one of: {', '.join(THERAPIES)}")
    if days <= 0:
        raise fail(f"--days must be > 0, got {days}")

    policy = THERAPIES[therapy]()
    patient_days = len(table) * days
    with Progress(
        TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(), console=err_console, transient=True,
        disable=patient_days < PROGRESS_MIN_PATIENT_DAYS,
    ) as bar:  # fmt: skip
        task = bar.add_task("sim", total=1.0)
        result = run_simulation(
            table, days=days, meals=meal_plan, therapy=policy, record=out is not None,
            progress=lambda done, total: bar.update(task, completed=done / total),
        )  # fmt: skip
    if out is not None:
        result.to_parquet(str(out))

    summary = result.summary()
    view = Table(title=f"{len(table)} patient(s), {days:g} day(s), {therapy}")
    for col in ("patient", "mean glucose (mg/dL)", "time in 70-180 (%)", "time < 70 (%)"):
        view.add_column(col, justify="right" if col != "patient" else "left")
    for name, row in summary.iterrows():
        view.add_row(
            str(name), f"{row.mean_glucose_mg_dl:.1f}", f"{row.tir_70_180_pct:.1f}",
            f"{row.tbr_70_pct:.1f}",
        )  # fmt: skip
    console = Console()
    console.print(view)
    console.print(
        f"all: mean glucose {summary.mean_glucose_mg_dl.mean():.1f} mg/dL, "
        f"time in 70-180 mg/dL {summary.tir_70_180_pct.mean():.1f}% "
        "(subcutaneous glucose, every minute)"
    )
    if out is not None:
        console.print(f"wrote {out}")
