"""A protocol's endpoints, by name, from the trial's tables.

Binary endpoints are reported as n/N with the exact Clopper-Pearson 95 % interval
(Clopper CJ, Pearson ES. *Biometrika* 1934;26:404); continuous ones as the mean with a
t-based 95 % interval. The participant-level definitions are those of
:mod:`isletsim.metrics.endpoints` (Reichman TW et al. *NEJM* 2025;393:858 [V]). A
participant who dies or is withdrawn before the end of a window is a non-responder for a
binary endpoint of that window (missing = failure), and has no value for a continuous one.

=================================  ==========================================================
name                               definition
=================================  ==========================================================
``primary``                        free of severe hypoglycaemia on days 90-365 AND HbA1c < 7 %
                                   or >= 1 point below baseline at >= 1 visit on days 180-365
``insulin_independence_d180_365``  insulin independence between days 180 and 365 (protocol's
                                   ``endpoints.insulin_independence`` reading; default
                                   ``through_end``: insulin-free from a day in the window
                                   through day 365 for >= 14 days, "at 1 year")
``free_of_severe_hypo_d90_365``    no severe (level 3) event on days 90-365
``hba1c_lt7_d365``                 HbA1c < 7.0 % at the day-365 visit
``tir_gt70_d365``                  time 70-180 mg/dL > 70 % in the day-365 CGM window
``insulin_dose_change_pct_d365``   mean of 100 (insulin_365 - insulin_0) / insulin_0, daily
                                   insulin over the diaries (continuous)
``hba1c_change_d365``              mean HbA1c(365) - HbA1c(0), percentage points (continuous)
``cpeptide_detectable_d365``       MMTT peak C-peptide detectable at the last MMTT visit
=================================  ==========================================================
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from isletsim.metrics.endpoints import (
    clopper_pearson,
    zimislecel_primary,
    zimislecel_secondary,
)
from isletsim.trial import tables
from isletsim.trial.protocol import Protocol

LAST_DAY = 365

DEFINITIONS: dict[str, str] = {
    "primary": "free of severe hypoglycaemia days 90-365 and HbA1c < 7 % or >= 1 point "
    "decrease at >= 1 visit days 180-365 (Reichman 2025)",
    "insulin_independence_d180_365": "insulin independence between days 180 and 365 "
    "(Reichman 2025; reading: {reading})",
    "free_of_severe_hypo_d90_365": "no severe (level 3) hypoglycaemic event days 90-365",
    "hba1c_lt7_d365": "HbA1c < 7.0 % at day 365",
    "tir_gt70_d365": "time 70-180 mg/dL > 70 % over the day-365 CGM window (Battelino 2019)",
    "insulin_dose_change_pct_d365": "mean % change of daily insulin, day-365 diary vs "
    "baseline diary (continuous, t interval)",
    "hba1c_change_d365": "mean change of HbA1c day 365 - baseline, points (continuous)",
    "cpeptide_detectable_d365": "MMTT peak C-peptide above the assay detection limit at the "
    "last MMTT visit",
}


def _binary(arm: str, name: str, flags: np.ndarray, definition: str) -> dict:
    k, n = int(flags.sum()), int(flags.size)
    lo, hi = clopper_pearson(k, n) if n else (math.nan, math.nan)
    return {"arm": arm, "endpoint": name, "value": k / n if n else math.nan, "n": float(k),
            "N": n, "ci_low": lo, "ci_high": hi, "definition": definition}  # fmt: skip


def mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean of the finite values and its t-based 95 % interval (NaN where undefined)."""
    x = values[np.isfinite(values)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if x.size < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - half, m + half


def _mean(arm: str, name: str, values: np.ndarray, n_all: int, definition: str) -> dict:
    m, lo, hi = mean_ci(values)
    n = int(np.isfinite(values).sum())
    return {"arm": arm, "endpoint": name, "value": m, "n": float(n), "N": n_all,
            "ci_low": lo, "ci_high": hi, "definition": definition}  # fmt: skip


def _at(visits: pd.DataFrame, ids: pd.Index, day: int, column: str) -> np.ndarray:
    at = visits[visits["day"] == day].set_index("participant")[column]
    return at.reindex(ids).to_numpy(dtype=float)


def participant_endpoints(
    participants: pd.DataFrame, visits: pd.DataFrame, events: pd.DataFrame,
    daily: pd.DataFrame, protocol: Protocol,
) -> pd.DataFrame:  # fmt: skip
    """Per enrolled participant, the value of every endpoint (binary as bool, else float)."""
    enrolled = participants[participants["enrolled"]]
    ids = pd.Index(enrolled["participant"].astype(str))
    end = protocol.protocol.follow_up_days
    p = pd.DataFrame({
        "id": ids,
        "baseline_hba1c": enrolled["baseline_hba1c_pct"].to_numpy(float),
        "last_followup_day": enrolled["last_followup_day"].to_numpy(float),
    })  # fmt: skip
    vis = visits.rename(columns={"participant": "id", "hba1c_pct": "hba1c"})
    vis = vis.loc[vis["hba1c"].notna(), ["id", "day", "hba1c"]]
    ev = events.rename(columns={"participant": "id"})[["id", "day", "term"]]
    end_day = min(LAST_DAY, end)
    names = protocol.endpoints.names
    out = pd.DataFrame({"participant": ids, "arm": enrolled["arm"].to_numpy()})
    if not names:
        return out
    complete = enrolled["last_followup_day"].to_numpy(float) >= end_day
    if {"primary", "free_of_severe_hypo_d90_365"} & set(names):
        prim = zimislecel_primary(p, vis, ev)
        if "primary" in names:
            out["primary"] = prim["responder"].to_numpy(bool)
        if "free_of_severe_hypo_d90_365" in names:
            out["free_of_severe_hypo_d90_365"] = prim["she_free"].to_numpy(bool) & complete
    if "insulin_independence_d180_365" in names:
        insulin = daily[daily["day"] >= 0].rename(columns={"participant": "id"})
        insulin = insulin[["id", "day", "insulin_u"]].assign(
            insulin_u=lambda d: np.where(d["insulin_u"] <= 1e-6, 0.0, d["insulin_u"])
        )
        sec = zimislecel_secondary(
            insulin, p[["id", "last_followup_day"]], window=(180, end_day),
            definition=protocol.endpoints.insulin_independence,
        )  # fmt: skip
        out["insulin_independence_d180_365"] = sec["insulin_independent"].to_numpy(bool)
    hba1c_end = _at(visits, ids, LAST_DAY, "hba1c_pct")
    with np.errstate(invalid="ignore", divide="ignore"):
        if "hba1c_lt7_d365" in names:
            out["hba1c_lt7_d365"] = np.nan_to_num(hba1c_end, nan=np.inf) < 7.0
        if "tir_gt70_d365" in names:
            tir_end = _at(visits, ids, LAST_DAY, "tir_pct")
            out["tir_gt70_d365"] = np.nan_to_num(tir_end, nan=-np.inf) > 70.0
        if "insulin_dose_change_pct_d365" in names:
            ins_end = _at(visits, ids, LAST_DAY, "insulin_u_per_day")
            ins_0 = _at(visits, ids, 0, "insulin_u_per_day")
            out["insulin_dose_change_pct_d365"] = 100.0 * (ins_end - ins_0) / ins_0
        if "hba1c_change_d365" in names:
            out["hba1c_change_d365"] = hba1c_end - _at(visits, ids, 0, "hba1c_pct")
        if "cpeptide_detectable_d365" in names:
            mmtt_days = [d for d in protocol.visits.mmtt_days if d > 0]
            peak = (_at(visits, ids, max(mmtt_days), "cpeptide_mmtt_peak_pmol_l")
                    if mmtt_days else np.full(len(ids), np.nan))  # fmt: skip
            out["cpeptide_detectable_d365"] = np.nan_to_num(peak, nan=0.0) > 0.0
    return out


def endpoint_table(per_participant: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """One row per arm and protocol endpoint (layout ``tables.ENDPOINTS``)."""
    rows = []
    reading = protocol.endpoints.insulin_independence
    for arm in protocol.arm_names:
        sub = per_participant[per_participant["arm"] == arm]
        for name in protocol.endpoints.names:
            definition = DEFINITIONS[name].format(reading=reading)
            col = sub[name].to_numpy()
            if col.dtype == bool:
                rows.append(_binary(arm, name, col, definition))
            else:
                rows.append(_mean(arm, name, col.astype(float), len(sub), definition))
    if not rows:
        return tables.empty("endpoints")
    return tables.conform("endpoints", pd.DataFrame(rows))


__all__ = ["DEFINITIONS", "endpoint_table", "mean_ci", "participant_endpoints"]
