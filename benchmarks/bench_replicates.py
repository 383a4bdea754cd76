"""Replicate trials of the published design: patient-days per second with 1 and 2 workers.

    python benchmarks/bench_replicates.py [--n 1000] [--participants 50] [--workers 1 2]
                                          [--batch-size B] [--seed S] [--json] [--write-docs]

Runs ``isletsim.trial.replicates.run_replicates`` (local process-pool executor) on
``protocols/forward_phase12.toml`` scaled to ``--participants`` enrolled in all (the arm
sizes keep the published 2:12 proportions, at least one per arm; 28-day run-in, 365 days of
follow-up, all policies, graft, visits and endpoint derivation), once per ``--workers``
value, with checkpoints written to a temporary directory. The issue's target: 1,000 trials
x 50 participants x 365 days under 30 minutes (>= 10,000 patient-days/s end to end) on the
2-core machine. Timings include starting the worker processes (spawn, imports, numba cache
loads). ``--json`` prints one object with ``patient_days``, ``seconds`` and
``patient_days_per_s`` of the run with the most workers, and ``runs`` (every worker count).
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
from isletsim.trial import Protocol
from isletsim.trial.replicates import run_replicates

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
START, END = "<!-- replicates:start -->", "<!-- replicates:end -->"
PROTOCOL = ROOT / "protocols" / "forward_phase12.toml"
TARGET_PD_PER_S = 10_000.0


def scaled_protocol(path: Path, participants: int) -> Protocol:
    """The protocol with ``participants`` enrolled in all, arms in their published ratio."""
    proto = Protocol.load(path)
    data = proto.model_dump()
    total = proto.n_enrolled
    sizes = [max(1, round(a.n * participants / total)) for a in proto.arms]
    sizes[-1] = max(1, participants - sum(sizes[:-1]))
    for arm, n in zip(data["arms"], sizes, strict=True):
        arm["n"] = n
    screened = data["population"]["max_screened"]
    data["population"]["max_screened"] = max(screened, -(-screened * participants // total))
    return Protocol.from_dict(data, source=f"{path} (scaled to {participants})")


def measure(proto: Protocol, n: int, seed: int, workers: int, batch_size: int | None) -> dict:
    """Time one ``run_replicates`` call (checkpoints in a temporary directory)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        oc = run_replicates(proto, n, seed, workers=workers, batch_size=batch_size,
                            out=Path(tmp) / "run")  # fmt: skip
        total = time.perf_counter() - t0
    return {
        "workers": workers,
        "replicates": n,
        "patient_days": oc.patient_days,
        "seconds": total,
        "patient_days_per_s": oc.patient_days / total,
        "seconds_per_replicate": total / n,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """All worker counts (see the module docstring)."""
    proto = scaled_protocol(args.protocol, args.participants)
    runs = [measure(proto, args.n, args.seed, w, args.batch_size) for w in args.workers]
    best = runs[-1]
    return {
        "protocol": proto.protocol.name,
        "arms": {a.name: a.n for a in proto.arms},
        "participants": proto.n_enrolled,
        "replicates": args.n,
        "days_per_participant": proto.protocol.run_in_days + proto.protocol.follow_up_days + 1,
        "patient_days": best["patient_days"],
        "seconds": best["seconds"],
        "patient_days_per_s": best["patient_days_per_s"],
        "runs": runs,
        "speedup": runs[-1]["patient_days_per_s"] / runs[0]["patient_days_per_s"],
        "target_patient_days_per_s": TARGET_PD_PER_S,
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} usable core(s), Python {platform.python_version()}, "
        f"numpy {np.__version__}",
        "load_average_at_end": list(os.getloadavg()),
    }


def write_docs(out: dict[str, Any]) -> None:
    """Replace (or append) the replicates section of docs/performance.md."""
    rows = [f"| {r['workers']} | {r['patient_days']:,.0f} | {r['seconds']:.1f} | "
            f"{r['patient_days_per_s']:,.0f} |" for r in out["runs"]]  # fmt: skip
    section = "\n".join([
        START,
        "## Replicate trials (`benchmarks/bench_replicates.py`)",
        "",
        f"Command: `python benchmarks/bench_replicates.py --n {out['replicates']} "
        f"--participants {out['participants']} --write-docs`. `run_replicates` with the "
        f"local process pool on `protocols/forward_phase12.toml` scaled to "
        f"{out['participants']} participants ({out['arms']}), {out['replicates']} replicate "
        f"trials of {out['days_per_participant']} days each, checkpoints written.",
        "",
        "| workers | patient-days | seconds | patient-days/s |",
        "|---:|---:|---:|---:|",
        *rows,
        "",
        f"Speed-up with {out['runs'][-1]['workers']} workers: {out['speedup']:.2f}x; target "
        f">= {out['target_patient_days_per_s']:,.0f} patient-days/s. Machine: "
        f"{out['machine']}; load average at end "
        f"{', '.join(f'{x:.2f}' for x in out['load_average_at_end'])}.",
        END,
    ])  # fmt: skip
    write_section(section, START, END, DOCS)


def main() -> None:
    """Command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--protocol", type=Path, default=PROTOCOL)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--participants", type=int, default=50)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    out = run(args)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for r in out["runs"]:
            print(f"{r['workers']} worker(s): {r['patient_days']:,.0f} patient-days in "
                  f"{r['seconds']:.1f} s = {r['patient_days_per_s']:,.0f}/s")  # fmt: skip
    if args.write_docs:
        write_docs(out)


if __name__ == "__main__":
    main()
