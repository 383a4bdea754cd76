"""The published protocol end to end: screening, simulation, endpoints, Parquet and report.

    python benchmarks/bench_trial.py [--protocol protocols/forward_phase12.toml] [--seed S]
                                     [--json] [--write-docs]

Runs ``isletsim.run_trial`` on the zimislecel phase 1-2 protocol (14 participants, a 28-day
run-in and 365 days of follow-up, MMTTs and visits) in this process, then writes the tables
(``TrialResult.to_parquet``) and ``report.html`` into a temporary directory, timing each
part. The issue's target: under 30 s on the 2-core machine, everything included. The first
run of a fresh checkout also compiles the numba kernels (cached on disk afterwards); run the
benchmark twice and read the second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _docs import write_section
from isletsim.trial import Protocol, run_trial

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
START, END = "<!-- trial:start -->", "<!-- trial:end -->"
PROTOCOL = ROOT / "protocols" / "forward_phase12.toml"
TARGET_S = 30.0


def measure(protocol: Path, seed: int | None) -> dict[str, Any]:
    """Time one end-to-end run of ``protocol`` (see the module docstring)."""
    t0 = time.perf_counter()
    c0 = time.process_time()
    proto = Protocol.load(protocol)
    result = run_trial(proto, seed)
    t_run = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result.to_parquet(Path(tmp) / "run")
        t_store = time.perf_counter()
        result.report(Path(tmp) / "run")
        t_report = time.perf_counter()
    days = proto.protocol.run_in_days + proto.protocol.follow_up_days + 1
    n = int(result.participants["enrolled"].sum())
    total = t_report - t0
    return {
        "protocol": proto.protocol.name,
        "seed": result.seed,
        "participants": n,
        "patient_days": n * days,
        "seconds": total,
        "cpu_seconds": time.process_time() - c0,
        "run_trial_s": t_run - t0,
        "parquet_s": t_store - t_run,
        "report_s": t_report - t_store,
        "patient_days_per_s": n * days / total,
        "target_s": TARGET_S,
        "within_target": total < TARGET_S,
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} usable core(s), Python {platform.python_version()}, "
        f"numpy {np.__version__}",
        "load_average_at_end": list(os.getloadavg()),
    }


def write_docs(out: dict[str, Any]) -> None:
    """Replace (or append) the trial section of docs/performance.md."""
    section = "\n".join([
        START,
        "## The published protocol end to end (`benchmarks/bench_trial.py`)",
        "",
        "Command: `python benchmarks/bench_trial.py --write-docs` (second run: numba caches "
        "warm). `run_trial` on `protocols/forward_phase12.toml` (screening, 28-day run-in, "
        "365 days of follow-up with graft, weaning, self-care, MMTTs, safety, visits and "
        "endpoints), then the Parquet tables and `report.html`.",
        "",
        "| part | seconds |",
        "|---|---:|",
        f"| `run_trial` ({out['participants']} participants, {out['patient_days']:,} "
        f"patient-days) | {out['run_trial_s']:.1f} |",
        f"| Parquet tables | {out['parquet_s']:.1f} |",
        f"| report.html | {out['report_s']:.1f} |",
        f"| **total** | **{out['seconds']:.1f}** (target < {out['target_s']:.0f}) |",
        "",
        f"{out['patient_days_per_s']:,.0f} patient-days per second end to end; "
        f"{out['cpu_seconds']:.1f} CPU-s. Machine: {out['machine']}; load average at end "
        f"{', '.join(f'{x:.2f}' for x in out['load_average_at_end'])}.",
        END,
    ])  # fmt: skip
    write_section(section, START, END, DOCS)


def main() -> None:
    """Command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--protocol", type=Path, default=PROTOCOL)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    out = measure(args.protocol, args.seed)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"{out['protocol']}: {out['seconds']:.1f} s end to end (run_trial "
              f"{out['run_trial_s']:.1f} s, Parquet {out['parquet_s']:.1f} s, report "
              f"{out['report_s']:.1f} s); target < {out['target_s']:.0f} s")  # fmt: skip
    if args.write_docs:
        write_docs(out)


if __name__ == "__main__":
    main()
