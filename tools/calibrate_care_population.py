"""Calibrate the basal-setting error of the standard-care population to the ``care`` ranges.

Targets: the published ranges of the ``care`` validation suite
(:mod:`isletsim.validation.care_suite`) for the IAH arm on pump and injections: HbA1c
6.9-8.2 %, TIR 49.5-65 %, TBR54 1.4-3.7 %, TBR70 3.3-8.8 % (derived). These are figures of
the *standard-care* population, not outcomes of the trial, so fitting the population to them
is legitimate; the severe-event rate is not a target here (see
``tools/calibrate_severe_hypo.py``, run after this one).

What is fitted: ``basal_log_mean`` and ``basal_log_sd`` of
``src/isletsim/params/population/adults_t1d.toml`` on a grid (:data:`GRID`); every other
entry is kept at the file's value. The loss is the sum over the four metrics of
``((value - centre) / half-width)^2``; the grid point with the smallest loss is written into
the file (``value`` and ``note`` of the two entries) and the fit into the README of that
folder between the calibration markers. ``--dry-run`` prints without writing.

Population per grid point: :func:`isletsim.validation.care_suite.run_arms` with
``CareConfig(participants, days, seed)`` for each of several ``seeds`` (never the suite's
2026), arms ``iah_pump`` and ``iah_mdi`` only (the same candidates, meals and behaviour
streams at every grid point: common random numbers). The metrics of a grid point are the
means over the seeds of the arm means (equal sizes: the pooled mean of all participants);
the default size is the suite's (100 participants x 56 days), so the fit targets the
statistic the suite checks, and the seed-to-seed spread of the chosen point (SD over the
seeds, and the standard error of their mean) is recorded as the fit's Monte Carlo error.
One seed of 60 participants x 28 days (the first fit) put the suite's own draw 1-2 SE off
the fitted TIR.

Run: ``.venv/bin/python tools/calibrate_care_population.py`` (about 6 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from isletsim.validation.care_suite import (
    HBA1C_RANGE_PCT,
    TBR54_RANGE_PCT,
    TBR70_RANGE_PCT,
    TIR_RANGE_PCT,
    CareConfig,
    run_arms,
)

ROOT = Path(__file__).resolve().parents[1]
TOML = ROOT / "src/isletsim/params/population/adults_t1d.toml"
README = ROOT / "src/isletsim/params/population/README.md"
BEGIN, END = "<!-- calibration:begin -->", "<!-- calibration:end -->"
#: Grid of (basal_log_mean, basal_log_sd). The first fit's grid (means -0.1 to -0.8, SDs
#: 0.2 to 0.65, one seed of 60 x 28 d) had its best point at its edge; a 3-seed fit at the
#: suite's size on means -0.35 to -0.95 and SDs 0.35 to 0.8 (2026-11-25, README) found the
#: loss falling slowly towards ever lower medians, into the region where the median basal
#: factor exp(mean) is below ``factor_min`` (0.4): there the clip, not the lognormal, is the
#: distribution (more than half of the people at 0.4 x optimal). The grid is therefore held
#: to medians >= factor_min (:func:`admissible`) and refined there.
GRID = list(itertools.product((-0.55, -0.65, -0.75, -0.85), (0.5, 0.6, 0.7, 0.8)))
#: Seeds of the fit (the care suite uses 2026: never fit on it).
SEEDS = (2027, 2028, 2029)
TARGETS = {
    "hba1c_pct": HBA1C_RANGE_PCT,
    "tir_70_180_pct": TIR_RANGE_PCT,
    "tbr_54_pct": TBR54_RANGE_PCT,
    "tbr_70_pct": TBR70_RANGE_PCT,
}


def admissible(mean: float, spec: dict[str, float] | None = None) -> bool:
    """Whether the median basal factor ``exp(mean)`` is at least the clip ``factor_min``."""
    from isletsim.population import load_population_spec

    return math.exp(mean) >= load_population_spec(spec)["factor_min"]


def evaluate(args: tuple[float, float, int, int, int]) -> dict[str, float]:
    """Mean metrics of the IAH arm (pump + injections) at one grid point and one seed."""
    mean, sd, participants, days, seed = args
    spec = {"basal_log_mean": mean, "basal_log_sd": sd}
    arms = run_arms(CareConfig(participants=participants, days=days, seed=seed), spec=spec,
                    arms=("iah_pump", "iah_mdi"))  # fmt: skip
    iah = pd.concat([a.summary for a in arms.values()])
    out = {"basal_log_mean": mean, "basal_log_sd": sd, "seed": seed}
    out.update({m: float(iah[m].mean()) for m in TARGETS})
    return out


def loss(row: pd.Series | dict[str, float]) -> float:
    """Sum over the four metrics of ``((value - centre) / half-width)^2``."""
    return sum(((row[m] - (lo + hi) / 2) / ((hi - lo) / 2)) ** 2
               for m, (lo, hi) in TARGETS.items())  # fmt: skip


def aggregate(per_seed: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Means over seeds per grid point (with the loss) and SDs over seeds per grid point."""
    keys = ["basal_log_mean", "basal_log_sd"]
    metrics = list(TARGETS)
    grouped = per_seed.groupby(keys)[metrics]
    table = grouped.mean().reset_index()
    table["loss"] = table.apply(loss, axis=1)
    sds = grouped.std(ddof=1).reset_index()
    return table.sort_values("loss"), sds


def set_entry(text: str, name: str, value: float, note: str) -> str:
    """Replace ``value`` and ``note`` of table ``[name]`` in TOML text."""
    pattern = re.compile(rf"(\[{name}\]\n)(.*?)(?=\n\[|\n# -|\Z)", re.S)
    match = pattern.search(text)
    if match is None:
        raise KeyError(f"{TOML}: no table [{name}]")
    body = re.sub(r"(?m)^value = .*$", f"value = {value:.6g}", match.group(2))
    body = re.sub(r"(?m)^note = .*$", 'note = "' + note.replace('"', '\\"') + '"', body)
    return text[: match.start(2)] + body + text[match.end(2) :]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=100, help="IAH participants per point")
    ap.add_argument("--days", type=int, default=56)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                    help="seeds averaged over (never the suite's 2026)")  # fmt: skip
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    if 2026 in args.seeds:
        ap.error("seed 2026 is the care suite's: fit on other seeds")
    t0 = time.time()
    grid = [(m, s) for m, s in GRID if admissible(m)]
    jobs = [(m, s, args.participants, args.days, seed) for m, s in grid for seed in args.seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        per_seed = pd.DataFrame(list(pool.map(evaluate, jobs)))
    table, sds = aggregate(per_seed)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    best = table.iloc[0]
    at_best = (sds["basal_log_mean"] == best.basal_log_mean) & (
        sds["basal_log_sd"] == best.basal_log_sd
    )
    sd = sds[at_best].iloc[0]
    k = len(args.seeds)
    elapsed = time.time() - t0
    print(f"best: basal_log_mean {best.basal_log_mean}, basal_log_sd {best.basal_log_sd} "
          f"({elapsed:.0f} s)")  # fmt: skip
    seeds = ", ".join(str(x) for x in args.seeds)

    def err(m: str) -> str:
        return f"SD over seeds {sd[m]:.2g}, SE {sd[m] / math.sqrt(k):.2g}" if k > 1 else "1 seed"

    fit = (
        f"IAH arm ({args.participants} participants x {args.days} d, mean over seeds {seeds}): "
        f"HbA1c {best.hba1c_pct:.2f} % (6.9-8.2; {err('hba1c_pct')}), TIR "
        f"{best.tir_70_180_pct:.1f} % (49.5-65; {err('tir_70_180_pct')}), TBR54 "
        f"{best.tbr_54_pct:.2f} % (1.4-3.7; {err('tbr_54_pct')}), TBR70 {best.tbr_70_pct:.2f} % "
        f"(3.3-8.8; {err('tbr_70_pct')}), loss {best.loss:.2f}"
    )
    if args.dry_run:
        print(fit)
        return 0
    note = (
        f"calibrated by tools/calibrate_care_population.py on {dt.date.today().isoformat()} "
        f"(grid, see README.md): {fit}."
    )
    text = TOML.read_text()
    text = set_entry(text, "basal_log_mean", float(best.basal_log_mean),
                     "Median basal setting relative to the optimal basal; " + note)  # fmt: skip
    text = set_entry(text, "basal_log_sd", float(best.basal_log_sd),
                     "Spread of the basal setting; " + note)  # fmt: skip
    TOML.write_text(text)
    from isletsim.population import load_population_spec

    load_population_spec(TOML)  # the written file must still load
    grid = table.to_string(index=False, float_format=lambda x: f"{x:.3g}")
    section = f"""{BEGIN}
Result of `tools/calibrate_care_population.py --participants {args.participants} --days
{args.days} --seeds {" ".join(str(x) for x in args.seeds)}` ({dt.date.today().isoformat()},
{elapsed:.0f} s): chosen
`basal_log_mean` = {best.basal_log_mean:g}, `basal_log_sd` = {best.basal_log_sd:g}; {fit}.

Grid (metrics averaged over the seeds):

```
{grid}
```
{END}"""
    readme = README.read_text()
    if BEGIN in readme and END in readme:
        readme = readme[: readme.index(BEGIN)] + section + readme[readme.index(END) + len(END) :]
    else:
        readme = readme.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(readme)
    print(f"wrote {TOML.relative_to(ROOT)} and {README.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
