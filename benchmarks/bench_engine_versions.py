"""Engine throughput of this checkout against an earlier revision, measured in turns.

    python benchmarks/bench_engine_versions.py [--base f1d2f43] [--n 10000] [--rounds 3]
        [--json] [--write-docs]

Checks the base revision out into a temporary git worktree, then runs the same measurement
(one simulated day of N participants, basal-bolus policy, no history, best of 3 in a fresh
process after a warm-up) alternately with the base and with this checkout, so that both see
the same machine load. Reports patient-days per second (wall and per CPU-second) and the cost
factor current/base. The default base is the foundation engine (13 S2008 states), before the
graft secretion, C-peptide and glucagon states were added.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from statistics import median

from _docs import write_section

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
START, END = "<!-- engine-versions:start -->", "<!-- engine-versions:end -->"

MEASURE = textwrap.dedent(
    """
    import json, time, numpy as np
    from isletsim.engine import simulate
    from isletsim.params import load_cohort
    from isletsim.therapy import BasalBolus
    n = {n}
    cohort = load_cohort()
    table = cohort.iloc[np.arange(n) % len(cohort)]
    simulate(table.iloc[:600], 0.05, "07:00=45", BasalBolus(), record=False)  # warm-up
    best = None
    for _ in range(3):
        t, c = time.perf_counter(), time.process_time()
        simulate(table, 1, "07:00=45,12:00=70,18:00=80", BasalBolus(), record=False)
        w, c = time.perf_counter() - t, time.process_time() - c
        if best is None or w < best[0]:
            best = (w, c)
    print(json.dumps({{"pd_per_s": n / best[0], "pd_per_cpu_s": n / best[1]}}))
    """
)


def measure(src: Path, n: int) -> dict[str, float]:
    """One measurement in a fresh interpreter importing isletsim from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", MEASURE.format(n=n)], env=env, cwd=src.parent,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="f1d2f43", help="git revision to compare with")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree),
                        args.base], check=True)  # fmt: skip
        try:
            runs: dict[str, list[dict[str, float]]] = {"base": [], "current": []}
            for _ in range(args.rounds):
                runs["base"].append(measure(tree / "src", args.n))
                runs["current"].append(measure(ROOT / "src", args.n))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                           check=False)  # fmt: skip
    summary = {
        k: {m: median(r[m] for r in v) for m in ("pd_per_s", "pd_per_cpu_s")}
        for k, v in runs.items()
    }
    out = {
        "base": args.base,
        "n": args.n,
        "rounds": args.rounds,
        "median": summary,
        "cost_factor_wall": summary["base"]["pd_per_s"] / summary["current"]["pd_per_s"],
        "cost_factor_cpu": summary["base"]["pd_per_cpu_s"] / summary["current"]["pd_per_cpu_s"],
        "runs": runs,
        "load_average_at_end": list(os.getloadavg()),
    }
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for k in ("base", "current"):
            print(f"{k:>8}: {summary[k]['pd_per_s']:,.0f} patient-days/s, "
                  f"{summary[k]['pd_per_cpu_s']:,.0f} per CPU-s (median of {args.rounds})")
        print(f"cost factor current vs {args.base}: {out['cost_factor_wall']:.2f}x wall, "
              f"{out['cost_factor_cpu']:.2f}x per CPU-s")
    if args.write_docs:
        write_docs(out)


def write_docs(out: dict) -> None:
    """Replace the engine-versions section of docs/performance.md."""
    s = out["median"]
    section = "\n".join([
        START,
        "## Cost of the graft, C-peptide and glucagon states "
        "(`benchmarks/bench_engine_versions.py`)",
        "",
        f"Command: `python benchmarks/bench_engine_versions.py --base {out['base']} "
        f"--n {out['n']} --write-docs`. The base is the foundation engine (13 S2008 states); "
        "the current engine has 22 states (portal insulin, secretion, two C-peptide "
        "compartments, five glucagon states). One simulated day, basal-bolus policy, "
        f"N = {out['n']:,}, measured in {out['rounds']} alternating rounds (median of the "
        "rounds, each the best of 3 runs in a fresh process).",
        "",
        "| engine | patient-days/s | patient-days per CPU-s |",
        "|---|---:|---:|",
        f"| base ({out['base']}) | {s['base']['pd_per_s']:,.0f} | "
        f"{s['base']['pd_per_cpu_s']:,.0f} |",
        f"| current | {s['current']['pd_per_s']:,.0f} | {s['current']['pd_per_cpu_s']:,.0f} |",
        "",
        f"Cost factor: {out['cost_factor_wall']:.2f}x wall, {out['cost_factor_cpu']:.2f}x per "
        "CPU-second (the graft issue allows at most 2x). Same machine as the engine section.",
        END,
    ])  # fmt: skip
    write_section(section, START, END, DOCS)


if __name__ == "__main__":
    main()
