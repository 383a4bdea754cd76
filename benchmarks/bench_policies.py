"""Cost of the standard-care policies against the foundation policy, in the same run.

    python benchmarks/bench_policies.py [--n 10000] [--rounds 3] [--json] [--write-docs]

One simulated day of N participants (the S2008 cohort repeated, distinct names), no
per-minute history, measured in alternating rounds in this process after a warm-up:

* ``foundation``: :class:`~isletsim.therapy.BasalBolus` with the fixed meals of the engine
  benchmark (07:00 45 g, 12:00 70 g, 18:00 80 g);
* ``standard care``: :class:`~isletsim.therapy.hypoglycemia.HypoglycemiaSelfCare` around
  :class:`~isletsim.therapy.regimens.PumpTherapy` with the bolus behaviour of
  ``regimens.toml`` (carb-counting error, missed and late boluses), plus random meals with
  personal habits; the timed part includes drawing the streams, habits and meals.

Reports patient-days per second (wall and per CPU-second; best of the rounds for each) and
the cost factor foundation / standard care (issue 5 allows at most 2x).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _docs import write_section
from isletsim.engine import simulate
from isletsim.params import load_cohort
from isletsim.scenarios import random_meals, sample_habits
from isletsim.therapy import BasalBolus
from isletsim.therapy.graft import participant_streams
from isletsim.therapy.hypoglycemia import HypoglycemiaSelfCare
from isletsim.therapy.regimens import BolusBehaviour, PumpTherapy

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
START, END = "<!-- policies:start -->", "<!-- policies:end -->"
FIXED_MEALS = "07:00=45,12:00=70,18:00=80"


def population(n: int) -> pd.DataFrame:
    """``n`` rows of the S2008 cohort with distinct names (random streams key on names)."""
    cohort = load_cohort()
    table = cohort.iloc[np.arange(n) % len(cohort)].reset_index(drop=True)
    table["Name"] = [f"{name}/{i:06d}" for i, name in enumerate(table["Name"])]
    return table


def run_foundation(table: pd.DataFrame) -> None:
    """One day on the foundation policy."""
    simulate(table, 1, FIXED_MEALS, BasalBolus(), record=False)


def run_standard_care(table: pd.DataFrame, seed: int = 1) -> None:
    """One day on all standard-care policies together, random meals drawn inside."""
    streams = participant_streams(seed, len(table))
    meals = random_meals(sample_habits("simglucose_random", streams), 1, streams)
    policy = HypoglycemiaSelfCare(
        PumpTherapy(behaviour=BolusBehaviour.from_parameters(seed=seed)), seed=seed
    )
    simulate(table, 1, meals, policy, record=False)


def timed(fn: Callable[[pd.DataFrame], None], table: pd.DataFrame) -> tuple[float, float]:
    """Wall and CPU seconds of ``fn(table)``."""
    t, c = time.perf_counter(), time.process_time()
    fn(table)
    return time.perf_counter() - t, time.process_time() - c


def measure(n: int, rounds: int) -> dict[str, Any]:
    """Alternating rounds of both configurations; best wall (and its CPU time) of each."""
    table = population(n)
    warm = table.iloc[:600]
    run_foundation(warm)  # compile / cache load
    run_standard_care(warm)
    runs: dict[str, list[tuple[float, float]]] = {"foundation": [], "standard_care": []}
    for _ in range(rounds):
        runs["foundation"].append(timed(run_foundation, table))
        runs["standard_care"].append(timed(run_standard_care, table))
    best = {k: min(v) for k, v in runs.items()}
    res = {
        k: {"wall_s": w, "cpu_s": c, "pd_per_s": n / w, "pd_per_cpu_s": n / c}
        for k, (w, c) in best.items()
    }
    return {
        "n": n,
        "rounds": rounds,
        "best": res,
        "cost_factor_wall": res["foundation"]["pd_per_s"] / res["standard_care"]["pd_per_s"],
        "cost_factor_cpu": res["foundation"]["pd_per_cpu_s"] / res["standard_care"]["pd_per_cpu_s"],
        "runs": runs,
        "load_average_at_end": list(os.getloadavg()),
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} usable core(s), Python {platform.python_version()}, "
        f"numpy {np.__version__}",
    }


def write_docs(out: dict[str, Any]) -> None:
    """Replace (or append) the policies section of docs/performance.md."""
    b = out["best"]
    section = "\n".join([
        START,
        "## Cost of the standard-care policies (`benchmarks/bench_policies.py`)",
        "",
        f"Command: `python benchmarks/bench_policies.py --n {out['n']} --write-docs`. One "
        f"simulated day, N = {out['n']:,}, no per-minute history, {out['rounds']} alternating "
        "rounds in one process after a warm-up (best wall time of each). Foundation: "
        "`BasalBolus`, fixed meals 07:00 45 g / 12:00 70 g / 18:00 80 g. Standard care: "
        "`HypoglycemiaSelfCare(PumpTherapy(behaviour=BolusBehaviour.from_parameters()))` "
        "(awareness sampled, 15-15 self-treatment, CGM alarms, severe events; carb-counting "
        "error, missed and late boluses) with random meals and personal habits, the drawing "
        "of the meals included in the time.",
        "",
        "| policies | wall s | patient-days/s | patient-days per CPU-s |",
        "|---|---:|---:|---:|",
        f"| foundation (BasalBolus) | {b['foundation']['wall_s']:.2f} | "
        f"{b['foundation']['pd_per_s']:,.0f} | {b['foundation']['pd_per_cpu_s']:,.0f} |",
        f"| all standard-care policies | {b['standard_care']['wall_s']:.2f} | "
        f"{b['standard_care']['pd_per_s']:,.0f} | {b['standard_care']['pd_per_cpu_s']:,.0f} |",
        "",
        f"Cost factor: {out['cost_factor_wall']:.2f}x wall, {out['cost_factor_cpu']:.2f}x per "
        "CPU-second (issue 5 allows at most 2x). "
        f"Machine: {out['machine']}; load average at end "
        f"{', '.join(f'{x:.2f}' for x in out['load_average_at_end'])}.",
        END,
    ])  # fmt: skip
    write_section(section, START, END, DOCS)


def main() -> None:
    """Command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    out = measure(args.n, args.rounds)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for k in ("foundation", "standard_care"):
            r = out["best"][k]
            print(
                f"{k:>14}: {r['pd_per_s']:,.0f} patient-days/s, "
                f"{r['pd_per_cpu_s']:,.0f} per CPU-s (best of {args.rounds})"
            )
        print(
            f"cost factor: {out['cost_factor_wall']:.2f}x wall, "
            f"{out['cost_factor_cpu']:.2f}x per CPU-s (limit 2x)"
        )
    if args.write_docs:
        write_docs(out)


if __name__ == "__main__":
    main()
