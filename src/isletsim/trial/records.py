"""From engine runs to the trial's tables: CGM, diary, visits and events (layout in ``tables``).

Visit assessments (science reference §5, §7, §3.4; protocol ``[visits]``):

* **CGM window**: the ``cgm_window_days`` whole days before the visit day (baseline: the
  last days of the run-in), CGM every 5 minutes; time in ranges as in the international
  consensus (Battelino T et al. *Diabetes Care* 2019;42:1593: 70-180 mg/dL both ends
  included, < 54, < 70, > 180), mean and coefficient of variation.
* **Insulin diary**: mean daily insulin delivered over the ``insulin_diary_days`` whole days
  before the visit; *insulin independent at the visit* when no insulin was delivered on any
  of those days.
* **HbA1c draw** (on ``hba1c_days``): the red-cell glycation model
  (:meth:`isletsim.engine.SimulationResult.hba1c`, started at the steady state of the run-in
  mean glucose) at the end of the day before the visit, reported to one decimal as
  laboratories do (NGSP %).
* **MMTT** (on ``mmtt_days``): see :mod:`isletsim.trial.assessments`.

Data after a participant's death are censored (not reported).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from isletsim.engine import MINUTES_PER_DAY
from isletsim.mmtt import MMTT_SAMPLES_MIN
from isletsim.model.cpeptide import measure_cpeptide
from isletsim.trial import tables
from isletsim.trial.assessments import MMTT_CLOCK_MIN
from isletsim.trial.protocol import Protocol

CGM_PERIOD_MIN = 5
#: What the trial keeps of each engine run: every 5 minutes (the CGM's sampling; the MMTT
#: samples and the drink are on that grid too), these columns (insulin summed per 5 minutes).
TRACE_EVERY_MIN = CGM_PERIOD_MIN
TRACE_COLUMNS = ("cgm_mg_dl", "insulin_u", "cpeptide_pmol_l")
#: Delivered insulin below this per day counts as none (floating-point dust), U.
NO_INSULIN_U = 1e-6


def _study_days(protocol: Protocol) -> int:
    """Days simulated: run-in, follow-up and the final visit day."""
    p = protocol.protocol
    return p.run_in_days + p.follow_up_days + 1


def build_records(runs, phi_all, enrolled: pd.DataFrame, protocol: Protocol,
                  assay_streams: list[np.random.Generator], death_day: np.ndarray,
                  *, keep_cgm: bool = True) -> dict[str, pd.DataFrame]:  # fmt: skip
    """The ``cgm``, ``daily`` and ``visits`` tables and the per-participant baselines.

    Parameters
    ----------
    runs
        :class:`~isletsim.trial.runner.GroupRun` of every therapy group.
    phi_all
        The trial-wide graft fraction (first course, second course, who got it).
    enrolled
        Enrolled participants in enrolment order (``Name``, ``arm``, ``BW`` ...).
    protocol
        The protocol of the run.
    assay_streams
        One generator per enrolled participant for the C-peptide assay error.
    death_day
        (N,) study day of death, ``inf`` if none.
    keep_cgm
        Build the 5-minute ``cgm`` table (False: an empty table, e.g. for replicate trials
        that keep only endpoints; the visits are computed from the same readings).
    """
    p = protocol.protocol
    v = protocol.visits
    run_in = p.run_in_days
    n_days = _study_days(protocol)
    names = enrolled["Name"].astype(str).to_numpy()
    arm_of = dict(zip(names, enrolled["arm"], strict=True))
    index_of = {name: k for k, name in enumerate(names)}
    sim_days = np.arange(n_days)
    phi_days = np.asarray(phi_all.first.phi(sim_days.astype(float)))
    if phi_all.second is not None:
        phi_days = phi_days + np.where(
            phi_all.given[:, None], phi_all.second.phi(sim_days.astype(float)), 0.0
        )

    cgm_parts, daily_parts, visit_rows = [], [], []
    for run in runs:
        res = run.result
        trace, every = res.trace, res.record_every
        group_names = [str(s) for s in res.participants]
        k_global = np.array([index_of[nm] for nm in group_names])
        cgm = trace["cgm_mg_dl"][:, :: CGM_PERIOD_MIN // every]
        minutes = res.trace_minutes[:: CGM_PERIOD_MIN // every]
        per_day = MINUTES_PER_DAY // every
        ins = trace["insulin_u"][:, : n_days * per_day].reshape(len(group_names), n_days, -1)
        insulin_day = ins.sum(axis=2)
        glucose_day = np.asarray(res.daily_mean_glucose)[:, :n_days]
        run_in_mean = glucose_day[:, :run_in].mean(axis=1)
        hba1c = np.asarray(res.hba1c(baseline_glucose=run_in_mean))
        cpep = trace["cpeptide_pmol_l"]
        for j, name in enumerate(group_names):
            k = int(k_global[j])
            arm = arm_of[name]
            alive_until = death_day[k]  # study day (inf if alive)
            if keep_cgm:
                keep = (minutes / MINUTES_PER_DAY - run_in) < alive_until
                cgm_parts.append(pd.DataFrame({
                    "participant": name, "arm": arm,
                    "minute": minutes[keep] - run_in * MINUTES_PER_DAY,
                    "cgm_mg_dl": cgm[j, keep],
                }))  # fmt: skip
            d_keep = (sim_days - run_in) < alive_until
            daily_parts.append(pd.DataFrame({
                "participant": name, "arm": arm, "day": (sim_days - run_in)[d_keep],
                "mean_glucose_mg_dl": glucose_day[j, d_keep],
                "insulin_u": insulin_day[j, d_keep],
                "graft_fraction": phi_days[k, d_keep],
            }))  # fmt: skip
            for day in v.days:
                if day > alive_until:
                    continue
                visit_rows.append(_visit(
                    name, arm, day, run_in, v, cgm[j], minutes, insulin_day[j], hba1c[j],
                    cpep[j], every, phi_days[k], assay_streams[k],
                ))  # fmt: skip
    return {
        "cgm": tables.conform("cgm", pd.concat(cgm_parts, ignore_index=True))
        if cgm_parts
        else tables.empty("cgm"),
        "daily": tables.conform("daily", pd.concat(daily_parts, ignore_index=True)),
        "visits": tables.conform("visits", pd.DataFrame(visit_rows)),
    }


def _visit(name, arm, day, run_in, v, cgm, minutes, insulin_day, hba1c, cpep, every, phi,
           rng) -> dict:  # fmt: skip
    """One visit's assessments (module docstring); ``cpep`` is recorded every ``every``
    minutes from minute 0."""
    sim_day = run_in + day
    lo, hi = (sim_day - v.cgm_window_days) * MINUTES_PER_DAY, sim_day * MINUTES_PER_DAY
    g = cgm[(minutes >= lo) & (minutes < hi)]
    diary = insulin_day[sim_day - v.insulin_diary_days : sim_day]
    row = {
        "participant": name, "arm": arm, "day": int(day),
        "hba1c_pct": round(float(hba1c[sim_day - 1]), 1) if day in v.hba1c_days else np.nan,
        "mean_glucose_mg_dl": float(g.mean()),
        "tir_pct": 100.0 * float(((g >= 70) & (g <= 180)).mean()),
        "tbr_54_pct": 100.0 * float((g < 54).mean()),
        "tbr_70_pct": 100.0 * float((g < 70).mean()),
        "tar_180_pct": 100.0 * float((g > 180).mean()),
        "cv_pct": 100.0 * float(g.std() / g.mean()),
        "insulin_u_per_day": float(diary.mean()),
        "insulin_independent": bool((diary <= NO_INSULIN_U).all()),
        "cpeptide_fasting_pmol_l": np.nan,
        "cpeptide_mmtt_peak_pmol_l": np.nan,
        "graft_fraction": float(phi[sim_day]),
    }  # fmt: skip
    if day in v.mmtt_days:
        drink = sim_day * MINUTES_PER_DAY + MMTT_CLOCK_MIN
        t = np.asarray(MMTT_SAMPLES_MIN)
        true = cpep[(drink + t) // every]
        meas = measure_cpeptide(true, rng=rng, unit="pmol/L")
        value = np.asarray(meas.value, dtype=float)
        fasting = value[t <= 0]
        row["cpeptide_fasting_pmol_l"] = (
            float(np.nanmean(fasting)) if np.isfinite(fasting).any() else 0.0
        )
        row["cpeptide_mmtt_peak_pmol_l"] = (
            float(np.nanmax(value)) if np.isfinite(value).any() else 0.0
        )
    return row


def build_events(runs, phi_all, enrolled: pd.DataFrame, protocol: Protocol,
                 safety: pd.DataFrame, death_day: np.ndarray) -> pd.DataFrame:  # fmt: skip
    """Every event of the trial (layout ``tables.EVENTS``), censored at death."""
    run_in = protocol.protocol.run_in_days
    arms = {a.name: a for a in protocol.arms}
    names = enrolled["Name"].astype(str).to_numpy()
    arm_of = dict(zip(names, enrolled["arm"], strict=True))
    rows: list[dict] = []

    def add(name, day, kind, term, grade=np.nan, serious=False, related="", detail=""):
        rows.append({"participant": name, "arm": arm_of[name], "day": float(day), "kind": kind,
                     "term": term, "grade": grade, "serious": bool(serious),
                     "related": related, "detail": detail})  # fmt: skip

    for k, name in enumerate(names):
        arm = arms[arm_of[name]]
        if arm.is_control:
            continue
        add(name, 0.0, "infusion", "islet_infusion", detail=f"{arm.product}, first infusion")
        if arm.redosing is not None and phi_all.given[k]:
            add(name, arm.redosing.day, "infusion", "islet_infusion",
                detail=f"{arm.product}, redosing ({arm.redosing.condition})")  # fmt: skip
    for run in runs:
        ev = run.self_care.events
        for r in ev.itertuples(index=False):
            add(str(r.participant), r.minute / MINUTES_PER_DAY - run_in, "severe_hypoglycemia",
                "severe_hypoglycemia", serious=True,
                detail=f"nadir {r.nadir_mg_dl:.0f} mg/dL, {r.duration_below_54_min:.0f} min "
                f"< 54 mg/dL, treated with {r.assisted_g:g} g by another person")  # fmt: skip
        if run.weaning is not None:
            log = run.weaning.log
            for r in log[log["action"].isin(["stop", "restart"])].itertuples(index=False):
                add(str(r.participant), r.day - run_in, f"insulin_{r.action}",
                    f"insulin_{r.action}", detail=str(r.rule))  # fmt: skip
    for r in safety.itertuples(index=False):
        name = names[int(r.participant)]
        kind = "death" if str(r.term) == "death" else "adverse_event"
        add(name, r.day, kind, str(r.term), grade=float(r.grade), serious=bool(r.serious),
            related=str(r.related), detail=str(r.outcome))  # fmt: skip
    logged_deaths = {r["participant"] for r in rows if r["kind"] == "death"}
    for k, name in enumerate(names):
        if np.isfinite(death_day[k]) and name not in logged_deaths:
            add(name, death_day[k], "death", "death", grade=5.0, serious=True,
                detail="fatal adverse event")  # fmt: skip
    frame = pd.DataFrame(rows) if rows else tables.empty("events")
    if len(frame):
        death_of = dict(zip(names, death_day, strict=True))
        alive = frame["day"].to_numpy() <= frame["participant"].map(death_of).to_numpy()
        frame = frame[alive].sort_values(["participant", "day", "kind"], kind="stable")
    return tables.conform("events", frame)


__all__ = ["CGM_PERIOD_MIN", "NO_INSULIN_U", "build_events", "build_records"]
