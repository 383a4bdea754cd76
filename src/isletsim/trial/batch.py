"""Replicate trials in batches: what one worker computes for a set of replicate indices.

Replicate ``k`` of a design run with root seed ``S`` is the trial
``run_trial(protocol, replicate_seed(S, k))``: its own cohort draw, meals, grafts and events.
It depends only on ``(S, k)``, never on which batch or worker runs it, so a batch of
replicates can be split, retried or resumed freely (issue 7: "replicate k's results are
identical whichever executor or batch size runs it").

:func:`run_batch` keeps only what operating characteristics need: the endpoint rows and a
per-arm summary of each replicate (no CGM series).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from isletsim.trial.protocol import Protocol

#: Spawn key of the replicate seeds (ASCII "REPL").
_REPLICATE_KEY = 0x5245504C

#: Columns of the per-arm summary of a replicate.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "replicate", "seed", "arm", "n_enrolled", "n_dosed", "n_completed", "patient_days",
    "severe_hypoglycemia_events", "severe_hypoglycemia_d90_365", "serious_adverse_events",
    "deaths", "insulin_independent_d365",
)  # fmt: skip


def replicate_seed(seed: int, replicate: int) -> int:
    """The root seed of replicate ``replicate`` of a design run with ``seed`` (63 bits)."""
    if seed < 0 or replicate < 0:
        raise ValueError(f"seed and replicate must be >= 0, got {seed}, {replicate}")
    ss = np.random.SeedSequence(int(seed), spawn_key=(_REPLICATE_KEY, int(replicate)))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def replicate_summary(result, replicate: int) -> pd.DataFrame:
    """Per-arm counts of one replicate's :class:`~isletsim.trial.result.TrialResult`."""
    p = result.participants
    ev = result.events
    days = result.protocol.protocol.run_in_days + result.protocol.protocol.follow_up_days + 1
    rows = []
    for arm in result.arms:
        pa = p[p["arm"] == arm]
        ea = ev[ev["arm"] == arm]
        she = ea[ea["kind"] == "severe_hypoglycemia"]
        last = result.visits[(result.visits["arm"] == arm) & (result.visits["day"] == max(
            result.visit_days))]  # fmt: skip
        rows.append({
            "replicate": replicate, "seed": result.seed, "arm": arm,
            "n_enrolled": int(pa["enrolled"].sum()), "n_dosed": int(pa["dosed"].sum()),
            "n_completed": int(pa["completed"].sum()),
            "patient_days": float(result.daily[result.daily["arm"] == arm].shape[0])
            if len(result.daily) else float(len(pa) * days),
            "severe_hypoglycemia_events": len(she[she["day"] >= 0]),
            "severe_hypoglycemia_d90_365": int(she["day"].between(90, 365).sum()),
            "serious_adverse_events": int(((ea["kind"] == "adverse_event") & ea["serious"]).sum()),
            "deaths": int((ea["kind"] == "death").sum()),
            "insulin_independent_d365": int(last["insulin_independent"].sum()),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def run_batch(protocol: Protocol, seed: int, replicates: Sequence[int]) -> dict[str, pd.DataFrame]:
    """Run the replicate trials ``replicates`` of a design and keep their endpoints.

    Parameters
    ----------
    protocol
        The validated protocol.
    seed
        Root seed of the design run (replicate ``k`` uses :func:`replicate_seed`).
    replicates
        Replicate indices (>= 0).

    Returns
    -------
    dict
        ``"endpoints"``: the endpoint table of every replicate with ``replicate`` and
        ``seed`` columns first; ``"summary"``: :data:`SUMMARY_COLUMNS` per replicate and arm.
    """
    from isletsim.trial.result import run_trial

    endpoints, summaries = [], []
    for k in replicates:
        s = replicate_seed(seed, int(k))
        result = run_trial(protocol, s)
        ep = result.endpoints.copy()
        ep.insert(0, "seed", s)
        ep.insert(0, "replicate", int(k))
        endpoints.append(ep)
        summaries.append(replicate_summary(result, int(k)))
    return {
        "endpoints": pd.concat(endpoints, ignore_index=True) if endpoints else pd.DataFrame(),
        "summary": pd.concat(summaries, ignore_index=True)
        if summaries
        else pd.DataFrame(columns=list(SUMMARY_COLUMNS)),
    }


__all__ = ["SUMMARY_COLUMNS", "replicate_seed", "replicate_summary", "run_batch"]
