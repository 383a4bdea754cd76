"""Column layout of the tables of a :class:`~isletsim.trial.result.TrialResult`.

One place says what each table of a virtual trial holds, with units, so that the runner,
the Parquet store, the report and DuckDB queries agree. Days are study days relative to the
infusion (day 0); the baseline run-in has negative days.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

#: ``participants``: one row per screened candidate.
PARTICIPANTS: Mapping[str, tuple[str, str]] = {
    "participant": ("object", "participant id (unique)"),
    "arm": ("object", "arm name; empty for candidates who were not enrolled"),
    "eligible": ("bool", "met every eligibility criterion at screening"),
    "screen_failure": ("object", "criteria not met, '; '-separated; empty if eligible"),
    "enrolled": ("bool", "assigned to an arm (eligible and within the arm's size)"),
    "dosed": ("bool", "received an infusion (always False in a standard-care arm)"),
    "completed": ("bool", "followed to the end of follow-up (alive, not withdrawn)"),
    "last_followup_day": ("float64", "last study day followed"),
    "death_day": ("float64", "study day of death; NaN if alive at the end"),
    "model_patient": ("object", "physiological parameter set (e.g. adult#004)"),
    "age_years": ("float64", "age at screening, years"),
    "sex": ("object", "'F' or 'M'"),
    "body_weight_kg": ("float64", "body weight, kg"),
    "diabetes_duration_years": ("float64", "duration of type 1 diabetes, years"),
    "gold_score": ("float64", "Gold awareness score 1-7 (>= 4 impaired)"),
    "severe_events_prior_year": ("int64", "severe hypoglycaemic events in the prior year"),
    "therapy": ("object", "standard-care insulin therapy: 'mdi', 'pump' or 'aid'"),
    "dose": ("float64", "islet dose in dose_unit (0 for none)"),
    "dose_unit": ("object", "'cells' or 'IEQ/kg' (empty for no product)"),
    "baseline_hba1c_pct": ("float64", "HbA1c at the end of run-in, %"),
    "baseline_tir_pct": ("float64", "time 70-180 mg/dL over the run-in CGM window, %"),
    "baseline_insulin_u_per_day": ("float64", "mean daily insulin over the run-in, U/day"),
}

#: ``visits``: one row per enrolled participant and protocol visit.
VISITS: Mapping[str, tuple[str, str]] = {
    "participant": ("object", "participant id"),
    "arm": ("object", "arm name"),
    "day": ("int64", "visit study day (0 = baseline, assessed on the run-in)"),
    "hba1c_pct": ("float64", "HbA1c draw, % (NaN if not drawn at this visit)"),
    "mean_glucose_mg_dl": ("float64", "mean CGM glucose over the visit's CGM window"),
    "tir_pct": ("float64", "time 70-180 mg/dL over the CGM window, %"),
    "tbr_54_pct": ("float64", "time < 54 mg/dL, %"),
    "tbr_70_pct": ("float64", "time < 70 mg/dL, %"),
    "tar_180_pct": ("float64", "time > 180 mg/dL, %"),
    "cv_pct": ("float64", "glucose coefficient of variation, %"),
    "insulin_u_per_day": ("float64", "mean daily insulin over the diary window, U/day"),
    "insulin_independent": ("bool", "no insulin on every day of the diary window"),
    "cpeptide_fasting_pmol_l": ("float64", "fasting C-peptide at the MMTT, pmol/L (NaN: none)"),
    "cpeptide_mmtt_peak_pmol_l": ("float64", "peak C-peptide of the MMTT, pmol/L (NaN: none)"),
    "graft_fraction": ("float64", "functional beta-cell fraction of a normal pancreas"),
}

#: ``events``: every event of the trial, one row each.
EVENTS: Mapping[str, tuple[str, str]] = {
    "participant": ("object", "participant id"),
    "arm": ("object", "arm name"),
    "day": ("float64", "study day (fractional for events with a time of day)"),
    "kind": ("object", "one of EVENT_KINDS"),
    "term": ("object", "event term (e.g. severe_hypoglycemia, neutropenia)"),
    "grade": ("float64", "CTCAE grade for adverse events (NaN otherwise)"),
    "serious": ("bool", "serious adverse event"),
    "related": ("object", "relatedness for adverse events (empty otherwise)"),
    "detail": ("object", "free text (nadir and duration, rule that stopped insulin, ...)"),
}

EVENT_KINDS: tuple[str, ...] = (
    "infusion",
    "severe_hypoglycemia",
    "adverse_event",
    "insulin_stop",
    "insulin_restart",
    "death",
)

#: ``daily``: one row per enrolled participant and study day (the diary).
DAILY: Mapping[str, tuple[str, str]] = {
    "participant": ("object", "participant id"),
    "arm": ("object", "arm name"),
    "day": ("int64", "study day"),
    "mean_glucose_mg_dl": ("float64", "mean plasma glucose that day, mg/dL"),
    "insulin_u": ("float64", "exogenous insulin delivered that day, U"),
    "graft_fraction": ("float64", "functional beta-cell fraction at the start of the day"),
}

#: ``cgm``: the CGM series of every enrolled participant, every 5 minutes.
CGM: Mapping[str, tuple[str, str]] = {
    "participant": ("object", "participant id"),
    "arm": ("object", "arm name"),
    "minute": ("int64", "study minute (day * 1440 + minute of the day)"),
    "cgm_mg_dl": ("float64", "CGM reading, mg/dL"),
}

#: ``endpoints``: one row per arm and endpoint.
ENDPOINTS: Mapping[str, tuple[str, str]] = {
    "arm": ("object", "arm name"),
    "endpoint": ("object", "endpoint name (protocol)"),
    "value": ("float64", "proportion for binary endpoints, mean otherwise"),
    "n": ("float64", "responders (binary) or participants with a value"),
    "N": ("int64", "participants assessed"),
    "ci_low": ("float64", "lower 95 % bound (Clopper-Pearson or t interval)"),
    "ci_high": ("float64", "upper 95 % bound"),
    "definition": ("object", "what was computed, with its source"),
}

#: ``published``: :meth:`TrialResult.compare_published`, one row per published figure.
PUBLISHED: Mapping[str, tuple[str, str]] = {
    "figure": ("object", "what was reported (e.g. 'insulin independent at day 365')"),
    "arm": ("object", "arm it refers to"),
    "published": ("float64", "published value (proportions as fractions, % as %)"),
    "published_text": ("object", "the figure as published (e.g. '10/12')"),
    "simulated": ("float64", "simulated value (mean over seeds when several)"),
    "sim_low": ("float64", "lower end of the simulated interval (over seeds, or 95 % CI)"),
    "sim_high": ("float64", "upper end of the simulated interval"),
    "within": ("bool", "published value lies inside [sim_low, sim_high]"),
    "source": ("object", "reference of the published figure"),
}

TABLES: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "participants": PARTICIPANTS,
    "visits": VISITS,
    "events": EVENTS,
    "daily": DAILY,
    "cgm": CGM,
    "endpoints": ENDPOINTS,
    "published": PUBLISHED,
}


def empty(table: str) -> pd.DataFrame:
    """An empty frame with the columns and dtypes of ``table``."""
    spec = TABLES[table]
    return pd.DataFrame({c: pd.Series(dtype=d) for c, (d, _) in spec.items()})


def conform(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly the columns of ``table``, in order and with their dtypes.

    Raises
    ------
    ValueError
        A column is missing (names the table and the column).
    """
    spec = TABLES[table]
    missing = [c for c in spec if c not in frame.columns]
    if missing:
        raise ValueError(f"table {table!r} lacks columns {missing}")
    out = frame.loc[:, list(spec)].reset_index(drop=True)
    return out.astype({c: d for c, (d, _) in spec.items()})


__all__ = [
    "CGM",
    "DAILY",
    "ENDPOINTS",
    "EVENTS",
    "EVENT_KINDS",
    "PARTICIPANTS",
    "PUBLISHED",
    "TABLES",
    "VISITS",
    "conform",
    "empty",
]
