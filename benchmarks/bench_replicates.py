"""Replicate trials of the published design: patient-days per second with 1 and 2 workers.

    python benchmarks/bench_replicates.py [--n 1000] [--participants 50] [--workers 1 2]
                                          [--batch-size B] [--seed S] [--profile]
                                          [--json] [--write-docs]

Runs ``isletsim.trial.replicates.run_replicates`` (local process-pool executor) on
``protocols/forward_phase12.toml`` scaled to ``--participants`` enrolled in all (the arm
sizes keep the published 2:12 proportions, at least one per arm; 28-day run-in, 365 days of
follow-up, all policies, graft, visits and endpoint derivation), once per ``--workers``
value, with checkpoints written to a temporary directory. The issue's target: 1,000 trials
x 50 participants x 365 days under 30 minutes (>= 10,000 patient-days/s end to end) on the
2-core machine. Timings include starting the worker processes (spawn, imports, numba cache
loads). ``--json`` prints one object with ``patient_days``, ``seconds`` and
``patient_days_per_s`` of the run with the most workers, and ``runs`` (every worker count).

``--profile`` also runs one batch (the default batch size of one worker) in this process
under ``cProfile`` and splits its time into what limits the throughput: the integration
(``solver``), the policies (``therapy``, test drinks, graft fraction, insulin sensitivity),
the engine's loop and recording, records and endpoints, cohort and inputs, and Parquet I/O
(library functions are charged to the isletsim code that called them).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _docs import write_section
from isletsim.trial import Protocol
from isletsim.trial.batch import run_batch
from isletsim.trial.replicates import _combine, _write_part, default_batch_size, run_replicates

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


#: Where the time of a batch goes: (label, path fragments of isletsim modules).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("integration (solver)", ("isletsim/solver.py", "isletsim/model/uva_padova.py")),
    ("policies", ("isletsim/therapy/", "isletsim/trial/assessments.py",
                  "isletsim/trial/runner.py", "isletsim/variability.py")),
    ("engine loop and recording", ("isletsim/engine.py",)),
    ("records and endpoints", ("isletsim/trial/records.py", "isletsim/trial/endpoints.py",
                               "isletsim/trial/result.py", "isletsim/trial/batch.py",
                               "isletsim/trial/tables.py", "isletsim/model/")),
    ("cohort and inputs", ("isletsim/population.py", "isletsim/scenarios.py",
                           "isletsim/meals.py", "isletsim/params/", "isletsim/trial/protocol.py")),
    ("Parquet I/O", ("isletsim/trial/replicates.py", "bench_replicates.py")),
)  # fmt: skip


def _category(filename: str) -> str | None:
    for label, parts in CATEGORIES:
        if any(part in filename for part in parts):
            return label
    return None


def profile_batch(proto: Protocol, seed: int, reps: list[int]) -> dict[str, Any]:
    """One batch in this process under cProfile, its time split by :data:`CATEGORIES`."""
    run_batch(proto, seed + 1, [0])  # compile / load the numba caches outside the profile
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    tables = run_batch(proto, seed, reps, threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        _write_part(Path(tmp), reps, _combine(tables))
    prof.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    memo: dict[Any, str] = {}

    def owner(func: Any, depth: int = 0) -> str:
        """Category of a function: its own module, else that of its costliest caller."""
        if func in memo:
            return memo[func]
        label = _category(func[0])
        if label is None:
            callers = stats[func][4] if func in stats else {}
            if callers and depth < 25:
                top = max(callers, key=lambda c: callers[c][2])
                label = owner(top, depth + 1)
            else:
                label = "other"
        memo[func] = label
        return label

    seconds: dict[str, float] = {label: 0.0 for label, _ in CATEGORIES}
    seconds["other"] = 0.0
    for func, (_cc, _nc, tt, _ct, callers) in stats.items():
        if _category(func[0]) is not None or not callers:
            seconds[owner(func)] += tt
            continue
        for caller, edge in callers.items():  # library code: charged caller by caller
            seconds[owner(caller)] += edge[2]
    days = proto.protocol.run_in_days + proto.protocol.follow_up_days + 1
    return {
        "replicates": len(reps),
        "participants": len(reps) * proto.n_enrolled,
        "patient_days": len(reps) * proto.n_enrolled * days,
        "wall_s": wall,
        "profiled_s": sum(seconds.values()),
        "seconds": seconds,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """All worker counts (see the module docstring)."""
    proto = scaled_protocol(args.protocol, args.participants)
    runs = [measure(proto, args.n, args.seed, w, args.batch_size) for w in args.workers]
    best = runs[-1]
    out = {
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
    if args.profile:
        size = args.batch_size or default_batch_size([proto], args.n, 1)
        out["profile"] = profile_batch(proto, args.seed, list(range(size)))
    return out


def write_docs(out: dict[str, Any]) -> None:
    """Replace (or append) the replicates section of docs/performance.md."""
    rows = [f"| {r['workers']} | {r['patient_days']:,.0f} | {r['seconds']:.1f} | "
            f"{r['patient_days_per_s']:,.0f} |" for r in out["runs"]]  # fmt: skip
    section = "\n".join([
        START,
        "## Replicate trials (`benchmarks/bench_replicates.py`)",
        "",
        f"Command: `python benchmarks/bench_replicates.py --n {out['replicates']} "
        f"--participants {out['participants']} --workers "
        f"{' '.join(str(r['workers']) for r in out['runs'])}"
        f"{' --profile' if out.get('profile') else ''} --write-docs`. `run_replicates` with the "
        f"local process pool on `protocols/forward_phase12.toml` scaled to "
        f"{out['participants']} participants ({out['arms']}), {out['replicates']} replicate "
        f"trials of {out['days_per_participant']} days each, checkpoints written.",
        "",
        "| workers | patient-days | seconds | patient-days/s |",
        "|---:|---:|---:|---:|",
        *rows,
        "",
        f"Speed-up with {out['runs'][-1]['workers']} workers: {out['speedup']:.2f}x; target "
        f">= {out['target_patient_days_per_s']:,.0f} patient-days/s "
        f"({'met' if out['patient_days_per_s'] >= out['target_patient_days_per_s'] else 'not met'})"
        ". Machine: "
        f"{out['machine']}; load average at end "
        f"{', '.join(f'{x:.2f}' for x in out['load_average_at_end'])}.",
        *_profile_lines(out.get("profile")),
        END,
    ])  # fmt: skip
    write_section(section, START, END, DOCS)


def _profile_lines(prof: dict[str, Any] | None) -> list[str]:
    if prof is None:
        return []
    total = prof["profiled_s"]
    rows = [f"| {label} | {sec:.1f} | {100 * sec / total:.0f} % |"
            for label, sec in sorted(prof["seconds"].items(), key=lambda kv: -kv[1])]  # fmt: skip
    return [
        "",
        f"Where the time goes (`--profile`): one batch of {prof['replicates']} replicates "
        f"({prof['participants']} participants, {prof['patient_days']:,} patient-days) in one "
        f"process with one engine thread under cProfile, {prof['wall_s']:.1f} s "
        f"({prof['patient_days'] / prof['wall_s']:,.0f} patient-days/s with the profiler's "
        "overhead); library calls are charged to the isletsim code that made them.",
        "",
        "| part | seconds | share |",
        "|---|---:|---:|",
        *rows,
    ]


def main() -> None:
    """Command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--protocol", type=Path, default=PROTOCOL)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--participants", type=int, default=50)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--profile", action="store_true",
                    help="also profile one batch in this process (where the time goes)")
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
