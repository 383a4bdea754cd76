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


def run_batch(protocol: Protocol, seed: int, replicates: Sequence[int], *,
              threads: int | None = None) -> dict[str, pd.DataFrame]:  # fmt: skip
    """Run the replicate trials ``replicates`` of a design together and keep their endpoints.

    All participants of all replicates are simulated as one population (one engine run per
    therapy stack), so a batch costs about as much per patient-day as a large trial. Each
    replicate ``k`` draws its cohort, meals, grafts, insulin sensitivity, safety events and
    assays from :func:`replicate_seed` ``(seed, k)``; its participants are named
    ``r<k>.<id>`` and the bolus-behaviour and self-care streams are keyed on those names
    under the design seed. So replicate ``k``'s result does not depend on the other
    replicates of the batch, on the batch size or on the worker.

    Parameters
    ----------
    protocol
        The validated protocol.
    seed
        Root seed of the design run (>= 0).
    replicates
        Replicate indices (>= 0, distinct).
    threads
        Threads of the engine (default: the CPUs this process may use); results do not
        depend on it.

    Returns
    -------
    dict
        ``"endpoints"``: the endpoint table of every replicate with ``replicate`` and
        ``seed`` columns first; ``"summary"``: :data:`SUMMARY_COLUMNS` per replicate and arm.
    """
    results = run_batch_results(protocol, seed, replicates, keep_cgm=False, threads=threads)
    endpoints, summaries = [], []
    for k, result in results.items():
        ep = result.endpoints.copy()
        ep.insert(0, "seed", result.seed)
        ep.insert(0, "replicate", int(k))
        endpoints.append(ep)
        summaries.append(replicate_summary(result, int(k)))
    return {
        "endpoints": pd.concat(endpoints, ignore_index=True) if endpoints else pd.DataFrame(),
        "summary": pd.concat(summaries, ignore_index=True)
        if summaries
        else pd.DataFrame(columns=list(SUMMARY_COLUMNS)),
    }


def run_batch_results(protocol: Protocol, seed: int, replicates: Sequence[int], *,
                      keep_cgm: bool = True, threads: int | None = None) -> dict:  # fmt: skip
    """The full :class:`~isletsim.trial.result.TrialResult` of each replicate of a batch
    (see :func:`run_batch`), keyed by replicate index; ``keep_cgm=False`` leaves the
    5-minute CGM tables empty (see :func:`~isletsim.trial.records.build_records`)."""
    from isletsim.therapy.graft import participant_streams
    from isletsim.trial import runner
    from isletsim.trial.records import build_events, build_records
    from isletsim.trial.result import assemble

    ks = [int(k) for k in replicates]
    if len(set(ks)) != len(ks) or any(k < 0 for k in ks):
        raise ValueError(f"replicates must be distinct indices >= 0, got {ks}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not ks:
        return {}
    seeds = {k: replicate_seed(seed, k) for k in ks}
    screened, enrolled, inputs, safety, death, assay = {}, {}, [], [], [], []
    offset = 0
    for k in ks:
        sc = runner.screen(protocol, seeds[k])
        sc["Name"] = [f"r{k}.{name}" for name in sc["Name"]]
        en = sc[sc["enrolled"]].reset_index(drop=True)
        screened[k], enrolled[k] = sc, en
        ev, dd = runner.run_safety(en, protocol, seeds[k])
        ev = ev.copy()
        if len(ev):
            ev["participant"] = ev["participant"].to_numpy(int) + offset
        safety.append(ev)
        death.append(dd)
        inputs.append(runner.trial_inputs(en, protocol, seeds[k]))
        assay += participant_streams(runner.purpose_seed(seeds[k], "assay"), len(en))
        offset += len(en)
    all_enrolled = pd.concat([enrolled[k] for k in ks], ignore_index=True)
    all_death = np.concatenate(death)
    runs, phi_all = runner.run_groups(
        all_enrolled, protocol, runner.concat_inputs(inputs), int(seed), threads=threads
    )
    all_safety = pd.concat([e for e in safety if len(e)], ignore_index=True) if any(
        len(e) for e in safety) else safety[0]  # fmt: skip
    recs = build_records(runs, phi_all, all_enrolled, protocol, assay, all_death,
                         keep_cgm=keep_cgm)  # fmt: skip
    events = build_events(runs, phi_all, all_enrolled, protocol, all_safety, all_death)
    out = {}
    start = 0
    for k in ks:
        en = enrolled[k]
        names = set(en["Name"].astype(str))
        mine = {t: f[f["participant"].isin(names)].reset_index(drop=True)
                for t, f in recs.items()}  # fmt: skip
        ev = events[events["participant"].isin(names)].reset_index(drop=True)
        dd = all_death[start : start + len(en)]
        start += len(en)
        out[k] = assemble(protocol, seeds[k], screened[k], en, mine, ev, dd)
    return out


__all__ = [
    "SUMMARY_COLUMNS",
    "replicate_seed",
    "replicate_summary",
    "run_batch",
    "run_batch_results",
]
