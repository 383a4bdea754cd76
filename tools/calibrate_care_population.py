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
``CareConfig(participants, days, seed)``, arms ``iah_pump`` and ``iah_mdi`` only (the same
candidates, meals and behaviour streams at every grid point: common random numbers).

Run: ``.venv/bin/python tools/calibrate_care_population.py`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
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
#: Grid of (basal_log_mean, basal_log_sd).
GRID = list(itertools.product((-0.1, -0.2, -0.35, -0.5, -0.65, -0.8), (0.2, 0.35, 0.5, 0.65)))
TARGETS = {
    "hba1c_pct": HBA1C_RANGE_PCT,
    "tir_70_180_pct": TIR_RANGE_PCT,
    "tbr_54_pct": TBR54_RANGE_PCT,
    "tbr_70_pct": TBR70_RANGE_PCT,
}


def evaluate(args: tuple[float, float, int, int, int]) -> dict[str, float]:
    """Mean metrics of the IAH arm (pump + injections) at one grid point."""
    mean, sd, participants, days, seed = args
    spec = {"basal_log_mean": mean, "basal_log_sd": sd}
    arms = run_arms(CareConfig(participants=participants, days=days, seed=seed), spec=spec,
                    arms=("iah_pump", "iah_mdi"))  # fmt: skip
    iah = pd.concat([a.summary for a in arms.values()])
    out = {"basal_log_mean": mean, "basal_log_sd": sd}
    out.update({m: float(iah[m].mean()) for m in TARGETS})
    out["loss"] = sum(((out[m] - (lo + hi) / 2) / ((hi - lo) / 2)) ** 2
                      for m, (lo, hi) in TARGETS.items())  # fmt: skip
    return out


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
    ap.add_argument("--participants", type=int, default=60, help="IAH participants per point")
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--seed", type=int, default=2027, help="not the suite's seed (2026)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.time()
    jobs = [(m, s, args.participants, args.days, args.seed) for m, s in GRID]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(evaluate, jobs))
    table = pd.DataFrame(rows).sort_values("loss")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    best = table.iloc[0]
    elapsed = time.time() - t0
    print(f"best: basal_log_mean {best.basal_log_mean}, basal_log_sd {best.basal_log_sd} "
          f"({elapsed:.0f} s)")  # fmt: skip
    if args.dry_run:
        return 0
    fit = (
        f"IAH arm ({args.participants} participants x {args.days} d, seed {args.seed}): HbA1c "
        f"{best.hba1c_pct:.2f} % (6.9-8.2), TIR {best.tir_70_180_pct:.1f} % (49.5-65), TBR54 "
        f"{best.tbr_54_pct:.2f} % (1.4-3.7), TBR70 {best.tbr_70_pct:.2f} % (3.3-8.8), loss "
        f"{best.loss:.2f}"
    )
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
    grid = table.to_markdown(index=False, floatfmt=".3g") if _has_tabulate() else table.to_string()
    section = f"""{BEGIN}
Result of `tools/calibrate_care_population.py --participants {args.participants} --days
{args.days} --seed {args.seed}` ({dt.date.today().isoformat()}, {elapsed:.0f} s): chosen
`basal_log_mean` = {best.basal_log_mean:g}, `basal_log_sd` = {best.basal_log_sd:g}; {fit}.

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


def _has_tabulate() -> bool:
    return False


if __name__ == "__main__":
    sys.exit(main())
