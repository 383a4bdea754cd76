"""Benchmark the consensus CGM metric set against iglu-python.

Synthetic cohort (seeded): 1,000 participants x 14 days at 5-minute sampling (4.03 M
readings). The "standard set" is: mean, SD, CV, GMI, time in ranges, LBGI, HBGI, GRI (plus
J-index, ADRR and data sufficiency, which come in the same pass), MAGE, CONGA-1, MODD and
hypo-/hyperglycaemia episodes.

* isletsim: :func:`isletsim.metrics.summary.consensus_summary` (all of the above but
  episodes) plus :func:`isletsim.metrics.episodes.episode_summary` (every episode via
  ``episodes``, summarised per participant as iglu's ``episode_calculation`` does), on all
  participants. Numba
  kernels are compiled on a small warm-up table first; that time is reported separately.
* iglu-python: the same metric set (``mean_glu, sd_glu, cv_glu, gmi, in_range_percent,
  below_percent, above_percent, lbgi, hbgi, gri, mage, conga(n=1), modd,
  episode_calculation``) on the first ``--iglu-subset`` participants of the same data,
  scaled **linearly** to the full cohort. iglu's per-subject loops grow faster than
  linearly with the number of subjects (it masks the whole frame once per subject), so
  the scaled figure is a lower bound on iglu's real time and the ratio is conservative.

Usage::

    python benchmarks/bench_metrics.py [--json] [--write-docs] [--participants 1000]
                                       [--days 14] [--iglu-subset 10] [--seed 20241125]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from isletsim import GlucoseTable
from isletsim.metrics.summary import consensus_summary

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "performance.md"
START_MARK = "<!-- metrics:start -->"
END_MARK = "<!-- metrics:end -->"
STEP_MIN = 5


def synthetic_cohort(n: int, days: int, seed: int) -> pd.DataFrame:
    """Plausible T1D-like CGM traces: daily rhythm, three meals a day, AR(1) noise.

    Columns ``id, time, gl`` (UTC times, glucose in mg/dL clipped to the 40-400 sensor range
    and rounded to whole mg/dL like a Dexcom export).
    """
    rng = np.random.default_rng(seed)
    steps = days * 1440 // STEP_MIN
    minutes = np.arange(steps) * STEP_MIN
    tod = minutes % 1440
    base = rng.normal(155.0, 25.0, size=(n, 1))
    amp = rng.uniform(10.0, 30.0, size=(n, 1))
    g = base + amp * np.sin(2 * np.pi * (tod - 300) / 1440)[None, :]
    for meal_min in (7 * 60 + 30, 12 * 60 + 30, 19 * 60):
        onset = meal_min + rng.normal(0.0, 30.0, size=(n, days))  # per day
        height = rng.uniform(30.0, 120.0, size=(n, days))
        day = minutes // 1440
        lag = tod[None, :] - onset[:, day]
        bump = np.where(lag > 0, (lag / 45.0) * np.exp(1.0 - lag / 45.0), 0.0)
        g += height[:, day] * bump
    noise = rng.normal(0.0, 6.0, size=(n, steps))
    ar = np.empty_like(noise)
    ar[:, 0] = noise[:, 0]
    for j in range(1, steps):  # AR(1), vectorised over participants
        ar[:, j] = 0.95 * ar[:, j - 1] + noise[:, j]
    g = np.clip(np.rint(g + ar), 40.0, 400.0)
    t0 = pd.Timestamp("2024-03-01", tz="UTC")
    times = t0 + pd.to_timedelta(minutes, unit="min")
    ids = np.array([f"P{i:04d}" for i in range(n)])
    return pd.DataFrame(
        {
            "id": np.repeat(ids, steps),
            "time": np.tile(times.to_numpy(), n),
            "gl": g.ravel(),
        }
    )


def isletsim_set(table: GlucoseTable) -> None:
    """The standard metric set with isletsim."""
    from isletsim.metrics.episodes import episode_summary

    consensus_summary(table)
    episode_summary(table)  # finds every episode, then summarises per participant like iglu


def iglu_set(frame: pd.DataFrame) -> None:
    """The same metric set with iglu-python (one call per metric, iglu defaults but CONGA-1)."""
    import iglu_python as iglu

    iglu.mean_glu(frame)
    iglu.sd_glu(frame)
    iglu.cv_glu(frame)
    iglu.gmi(frame)
    iglu.in_range_percent(frame, target_ranges=[[70, 180], [70, 140]])
    iglu.below_percent(frame, targets_below=[54, 70])
    iglu.above_percent(frame, targets_above=[180, 250])
    iglu.lbgi(frame)
    iglu.hbgi(frame)
    iglu.gri(frame)
    iglu.mage(frame)
    iglu.conga(frame, n=1)
    iglu.modd(frame)
    iglu.episode_calculation(frame)


def machine() -> dict[str, object]:
    """Cores, CPU model and library versions of this machine."""
    model = platform.processor() or "unknown"
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", text, flags=re.M)
        if m:
            model = m.group(1).strip()
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    import numba

    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "numba": numba.__version__,
    }
    try:
        versions["iglu_python"] = importlib.metadata.version("iglu-python")
    except importlib.metadata.PackageNotFoundError:
        versions["iglu_python"] = "not installed"
    return {"cpu_model": model, "cores": usable, "platform": platform.platform(), **versions}


def run(n: int, days: int, subset: int, seed: int) -> dict[str, object]:
    frame = synthetic_cohort(n, days, seed)
    table = GlucoseTable.from_frame(frame)

    warm = GlucoseTable.from_frame(synthetic_cohort(3, 3, seed + 1))
    t = time.perf_counter()
    isletsim_set(warm)  # numba compilation (or loading its cache)
    warmup_s = time.perf_counter() - t

    t = time.perf_counter()
    isletsim_set(table)
    seconds = time.perf_counter() - t

    k = min(subset, n)
    sub = table.subset(table.ids[:k]).to_iglu()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        iglu_set(sub)
        iglu_subset_s = time.perf_counter() - t
    iglu_seconds = iglu_subset_s * n / k
    return {
        "participants": n,
        "days": days,
        "interval_min": STEP_MIN,
        "readings": len(table),
        "seed": seed,
        "metric_set": "mean, SD, CV, GMI, TIR/TBR/TAR, LBGI, HBGI, GRI, MAGE, CONGA-1, MODD, "
        "episodes",
        "seconds": round(seconds, 3),
        "warmup_seconds": round(warmup_s, 3),
        "iglu_participants": k,
        "iglu_subset_seconds": round(iglu_subset_s, 3),
        "iglu_seconds": round(iglu_seconds, 1),
        "iglu_scaling": f"linear from {k} to {n} participants (lower bound for iglu)",
        "ratio_vs_iglu": round(iglu_seconds / seconds, 1),
        "machine": machine(),
    }


def markdown(res: dict[str, object]) -> str:
    mach = res["machine"]
    assert isinstance(mach, dict)
    return "\n".join(
        [
            START_MARK,
            "## CGM metrics",
            "",
            f"Standard set ({res['metric_set']}) on a synthetic cohort of "
            f"{res['participants']:,} participants x {res['days']} days at "
            f"{res['interval_min']}-minute sampling ({res['readings']:,} readings, seed "
            f"{res['seed']}); `python benchmarks/bench_metrics.py --write-docs`.",
            "",
            "| | seconds |",
            "| --- | --- |",
            f"| isletsim (`consensus_summary` + `episode_summary`) | {res['seconds']} |",
            f"| iglu-python on {res['iglu_participants']} participants | "
            f"{res['iglu_subset_seconds']} |",
            f"| iglu-python scaled linearly to {res['participants']:,} | {res['iglu_seconds']} |",
            f"| **ratio iglu / isletsim** | **{res['ratio_vs_iglu']}x** |",
            "",
            f"Numba compilation / cache load before timing: {res['warmup_seconds']} s (not "
            "included). iglu loops over subjects with a boolean mask over the whole frame, so "
            "its real time at 1,000 participants is higher than the linear scaling; "
            "the ratio is a lower bound.",
            "",
            f"Machine: {mach['cpu_model']}, {mach['cores']} usable core(s), "
            f"Python {mach['python']}, numpy {mach['numpy']}, pandas {mach['pandas']}, "
            f"numba {mach['numba']}, iglu_python {mach['iglu_python']}.",
            END_MARK,
        ]
    )


def write_docs(res: dict[str, object], path: Path = DOCS) -> None:
    """Insert or replace the CGM-metrics section of docs/performance.md (between markers)."""
    section = markdown(res)
    text = path.read_text() if path.exists() else "# Performance\n"
    if START_MARK in text and END_MARK in text:
        a = text.index(START_MARK)
        b = text.index(END_MARK) + len(END_MARK)
        text = text[:a] + section + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    ap.add_argument("--participants", type=int, default=1000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--iglu-subset", type=int, default=10)
    ap.add_argument("--seed", type=int, default=20241125)
    args = ap.parse_args(argv)
    res = run(args.participants, args.days, args.iglu_subset, args.seed)
    if args.write_docs:
        write_docs(res)
    if args.json:
        print(json.dumps(res))
        return 0
    m = res["machine"]
    assert isinstance(m, dict)
    print(
        f"standard CGM metric set, {res['participants']} participants x {res['days']} days, "
        f"{res['readings']:,} readings"
    )
    print(f"  seconds        {res['seconds']:.3f}  (isletsim; warm-up {res['warmup_seconds']} s)")
    print(
        f"  iglu_seconds   {res['iglu_seconds']:.1f}  (iglu-python on "
        f"{res['iglu_participants']} participants: {res['iglu_subset_seconds']} s, scaled "
        f"linearly to {res['participants']}; a lower bound)"
    )
    print(f"  ratio_vs_iglu  {res['ratio_vs_iglu']:.1f}x")
    print(
        f"  machine        {m['cpu_model']}, {m['cores']} core(s); Python {m['python']}, "
        f"numpy {m['numpy']}, pandas {m['pandas']}, numba {m['numba']}, "
        f"iglu_python {m['iglu_python']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
