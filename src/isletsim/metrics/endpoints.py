"""Trial endpoints for beta-cell replacement: insulin independence and the zimislecel endpoints.

Pure functions on tidy per-participant tables, so they serve simulated and real trial data
alike. Days are study days relative to the (first) infusion, day 0; every window
``(start, end)`` is inclusive at both ends.

Tables and their columns (extra columns are ignored):

``participants``
    ``id`` (unique), ``baseline_hba1c`` (NGSP %, NaN = not measured), optional
    ``last_followup_day`` (last study day the participant was followed; no NaN).
``visits``
    ``id``, ``day``, ``hba1c`` (%, NaN = not measured at that visit); for the CIT-style
    definition also ``cpeptide_fasting`` and/or ``cpeptide_stimulated``.
``events``
    ``id``, ``day``, ``term`` (e.g. ``"severe_hypoglycemia"``, i.e. a level-3 event:
    altered mental/physical status needing another person's help; science reference §6.1).
``insulin``
    ``id``, ``day`` (integer), ``insulin_u`` (total exogenous insulin that day, U; several
    rows for one day are summed; NaN = not recorded). A day without a row is *not recorded*,
    which is not evidence of no insulin: it breaks an insulin-free run.

Sources (science reference §8.4-8.5):

* Zimislecel: Reichman TW et al. *NEJM* 2025;393(9):858-868 [V: PubMed abstract] — primary
  end point (part C) and the secondary end point "insulin independence between days 180
  and 365" (its operational definition in the paper is [U]; see
  :func:`zimislecel_secondary`).
* Insulin independence, "no exogenous insulin for >= 14 consecutive days" and the
  CIT/CITR-style conditions on HbA1c and C-peptide [U: to verify against the CIT-07
  protocol text].
* Exact binomial CI: Clopper CJ, Pearson ES. *Biometrika* 1934;26:404-413.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd

from isletsim.metrics.hba1c import _check_range

SEVERE_HYPOGLYCEMIA_TERM: str = "severe_hypoglycemia"
#: Zimislecel primary end point windows (study days, inclusive) [V].
ZIMISLECEL_SHE_WINDOW: tuple[int, int] = (90, 365)
ZIMISLECEL_HBA1C_WINDOW: tuple[int, int] = (180, 365)
#: Zimislecel secondary end point window (study days, inclusive) [V].
ZIMISLECEL_INSULIN_WINDOW: tuple[int, int] = (180, 365)
#: Tolerance for comparing HbA1c differences (values are reported to 0.1 %, so e.g.
#: 8.1 - 7.1 must count as a decrease of 1.0 despite binary floating point).
_EPS: float = 1e-9

SecondaryDefinition: TypeAlias = Literal["entire_window", "through_end", "any_run"]
CpeptideUnit: TypeAlias = Literal["ng/mL", "nmol/L"]


# --------------------------------------------------------------------------------------------
# Validation helpers


def _require(df: object, table: str, columns: Sequence[str]) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{table}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{table}: missing required column(s) {missing}")
    return df


def _numeric_col(df: pd.DataFrame, table: str, col: str, *, allow_nan: bool) -> pd.Series:
    try:
        s = pd.to_numeric(df[col], errors="raise").astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{table}: column {col!r} must be numeric") from exc
    if not allow_nan and s.isna().any():
        raise ValueError(f"{table}: column {col!r} has missing values")
    if np.isinf(s.to_numpy()).any():
        raise ValueError(f"{table}: column {col!r} has infinite values")
    return s


def _window(window: tuple[float, float], name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(w) for w in window)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a (start_day, end_day) pair, got {window!r}") from exc
    if not lo <= hi:
        raise ValueError(f"{name}: start {lo} is after end {hi}")
    return lo, hi


def _participants(participants: pd.DataFrame, need_baseline: bool) -> pd.DataFrame:
    cols = ["id", "baseline_hba1c"] if need_baseline else ["id"]
    p = _require(participants, "participants", cols)
    if p["id"].isna().any():
        raise ValueError("participants: column 'id' has missing values")
    if p["id"].duplicated().any():
        dup = p.loc[p["id"].duplicated(), "id"].tolist()[:3]
        raise ValueError(f"participants: column 'id' has duplicates, e.g. {dup}")
    out = pd.DataFrame({"id": p["id"].to_numpy()})
    if need_baseline:
        base = _numeric_col(p, "participants", "baseline_hba1c", allow_nan=True)
        _check_range(base, "participants.baseline_hba1c", "%", 2.0, 25.0, "mmol/mol given?")
        out["baseline_hba1c"] = base.to_numpy()
    if "last_followup_day" in p.columns:
        out["last_followup_day"] = _numeric_col(
            p, "participants", "last_followup_day", allow_nan=False
        ).to_numpy()
    return out


def _known_ids(df: pd.DataFrame, table: str, ids: pd.Series) -> None:
    unknown = pd.Index(df["id"].unique()).difference(pd.Index(ids))
    if len(unknown):
        raise ValueError(
            f"{table}: column 'id' has ids not in participants, e.g. {list(unknown[:3])}"
        )


def _daily_insulin(insulin: pd.DataFrame) -> pd.DataFrame:
    """Validated daily insulin table: one row per (id, day) with a recorded dose."""
    ins = _require(insulin, "insulin", ["id", "day", "insulin_u"])
    if ins["id"].isna().any():
        raise ValueError("insulin: column 'id' has missing values")
    day = _numeric_col(ins, "insulin", "day", allow_nan=False)
    if (day != np.round(day)).any():
        raise ValueError("insulin: column 'day' must hold whole study days")
    dose = _numeric_col(ins, "insulin", "insulin_u", allow_nan=True)
    if (dose < 0).any():
        raise ValueError("insulin: column 'insulin_u' has negative doses")
    d = pd.DataFrame({"id": ins["id"].to_numpy(), "day": day.to_numpy(), "insulin_u": dose})
    d = d[d["insulin_u"].notna()]
    return d.groupby(["id", "day"], as_index=False, sort=True)["insulin_u"].sum()


def _ordered_ids(participants: pd.DataFrame | None, *tables: pd.DataFrame) -> pd.Series:
    if participants is not None:
        return _participants(participants, need_baseline=False)["id"]
    ids = pd.concat([t["id"] for t in tables], ignore_index=True)
    return pd.Series(pd.unique(ids), name="id")


# --------------------------------------------------------------------------------------------
# Insulin independence


def insulin_free_runs(
    insulin: pd.DataFrame, *, window: tuple[float, float] | None = None
) -> pd.DataFrame:
    """Maximal runs of consecutive recorded days with no exogenous insulin.

    A day counts as insulin-free when it has a record with ``insulin_u == 0``; a day with
    insulin or without a record ends the run. With *window*, only days inside it are used
    (runs are clipped to the window).

    Parameters
    ----------
    insulin
        Daily insulin table (``id``, ``day``, ``insulin_u``; see module docstring).
    window
        Optional inclusive ``(start_day, end_day)``.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``start_day``, ``end_day``, ``n_days`` (one row per run, sorted by id, day).

    Raises
    ------
    ValueError
        Missing columns, non-integer days, negative doses.
    """
    d = _daily_insulin(insulin)
    if window is not None:
        lo, hi = _window(window, "window")
        d = d[(d["day"] >= lo) & (d["day"] <= hi)]
    d = d[d["insulin_u"] == 0].reset_index(drop=True)
    if d.empty:
        return pd.DataFrame(
            {
                "id": pd.Series([], dtype=insulin["id"].dtype),
                "start_day": pd.Series([], dtype=float),
                "end_day": pd.Series([], dtype=float),
                "n_days": pd.Series([], dtype=int),
            }
        )
    new_run = (d["id"] != d["id"].shift()) | (d["day"] != d["day"].shift() + 1)
    runs = d.groupby(new_run.cumsum().to_numpy()).agg(
        id=("id", "first"), start_day=("day", "min"), end_day=("day", "max")
    )
    runs["n_days"] = (runs["end_day"] - runs["start_day"] + 1).astype(int)
    return runs.reset_index(drop=True)


def _recorded_days(daily: pd.DataFrame, lo: float, hi: float) -> pd.Series:
    inside = daily[(daily["day"] >= lo) & (daily["day"] <= hi)]
    return inside.groupby("id")["day"].size()


def insulin_independence(
    insulin: pd.DataFrame,
    *,
    window: tuple[float, float] | None = None,
    min_consecutive_days: int = 14,
    participants: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Insulin independence: no exogenous insulin for >= ``min_consecutive_days`` days.

    The core of the CIT/CITR-style definition ("freedom from exogenous insulin for >= 14
    consecutive days") [U: verify against the CIT-07 protocol]; see
    :func:`insulin_independence_cit` for the added glycaemic conditions. A participant is
    insulin independent if some run of consecutive recorded insulin-free days inside
    *window* (default: all recorded days) has at least ``min_consecutive_days`` days.
    Missing days break a run; a participant without any insulin record in the window is not
    insulin independent and is flagged (``flag_no_insulin_data``).

    Parameters
    ----------
    insulin
        Daily insulin table (``id``, ``day``, ``insulin_u``).
    window
        Optional inclusive ``(start_day, end_day)``.
    min_consecutive_days
        Minimum run length (default 14).
    participants
        Optional table with ``id``: fixes the participant list and order (participants
        without insulin records get a row); ids in *insulin* must then be listed there.

    Returns
    -------
    pandas.DataFrame
        One row per participant: ``id``, ``insulin_independent``,
        ``first_qualifying_start_day``, ``first_qualifying_end_day`` (first run long
        enough; NaN if none), ``longest_run_days``, ``n_days_recorded`` (in the window),
        ``flag_no_insulin_data``.

    Raises
    ------
    ValueError
        Bad tables (see module docstring) or ``min_consecutive_days < 1``.
    """
    if int(min_consecutive_days) != min_consecutive_days or min_consecutive_days < 1:
        raise ValueError(
            f"min_consecutive_days must be a positive integer, got {min_consecutive_days}"
        )
    daily = _daily_insulin(insulin)
    ids = _ordered_ids(participants, daily)
    if participants is not None:
        _known_ids(daily, "insulin", ids)
    lo, hi = _window(window, "window") if window is not None else (-np.inf, np.inf)
    runs = insulin_free_runs(insulin, window=window)
    n_rec = _recorded_days(daily, lo, hi)
    return _independence_table(ids, runs, n_rec, runs["n_days"] >= min_consecutive_days)


def _independence_table(
    ids: pd.Series, runs: pd.DataFrame, n_recorded: pd.Series, qualifies: pd.Series
) -> pd.DataFrame:
    q = runs[qualifies.to_numpy()].sort_values(["id", "start_day"]).groupby("id").first()
    longest = runs.groupby("id")["n_days"].max()
    out = pd.DataFrame({"id": ids.to_numpy()})
    out["insulin_independent"] = out["id"].isin(q.index)
    out["first_qualifying_start_day"] = out["id"].map(q["start_day"]).astype(float)
    out["first_qualifying_end_day"] = out["id"].map(q["end_day"]).astype(float)
    out["longest_run_days"] = out["id"].map(longest).fillna(0).astype(int)
    out["n_days_recorded"] = out["id"].map(n_recorded).fillna(0).astype(int)
    out["flag_no_insulin_data"] = out["n_days_recorded"] == 0
    return out


def insulin_independence_cit(
    insulin: pd.DataFrame,
    visits: pd.DataFrame,
    *,
    window: tuple[float, float] | None = None,
    min_consecutive_days: int = 14,
    hba1c_max: float | None = 6.5,
    hba1c_max_inclusive: bool = True,
    cpeptide_min: float | None = 0.5,
    cpeptide_unit: CpeptideUnit = "ng/mL",
    participants: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """CIT/CITR-style insulin independence with optional HbA1c and C-peptide conditions.

    Science reference §8.4 [U — verify against the CIT-07 protocol text]: no exogenous
    insulin for >= 14 consecutive days with HbA1c <= 6.5% (``< 7.0`` in some protocols:
    ``hba1c_max=7.0, hba1c_max_inclusive=False``) and C-peptide >= 0.5 ng/mL fasting or
    stimulated. The protocol's capillary-glucose limits (fasting <= 140 mg/dL on no more
    than 3 days/week, 2-h post-prandial <= 180 mg/dL on no more than 4 days/week) need SMBG
    data and are not implemented.

    Operational rule: an insulin-free run of >= ``min_consecutive_days`` days (as in
    :func:`insulin_independence`) qualifies if, among the visits whose day lies inside that
    run, at least one meets the HbA1c condition and at least one (possibly another) meets
    the C-peptide condition. A condition set to ``None`` is dropped. A run without a visit
    with the needed measurements does not qualify (flag ``flag_no_visit_in_run``).

    Parameters
    ----------
    insulin
        Daily insulin table.
    visits
        Visits table with ``id``, ``day``, ``hba1c`` (when ``hba1c_max`` is set) and
        ``cpeptide_fasting`` and/or ``cpeptide_stimulated`` (when ``cpeptide_min`` is set).
    window, min_consecutive_days, participants
        As in :func:`insulin_independence`.
    hba1c_max, hba1c_max_inclusive
        HbA1c limit (%) and whether equality passes; ``None`` disables the condition.
    cpeptide_min, cpeptide_unit
        C-peptide minimum (inclusive) and its unit; ``None`` disables the condition.

    Returns
    -------
    pandas.DataFrame
        Columns of :func:`insulin_independence` (with ``insulin_independent`` now requiring
        the conditions and ``first_qualifying_*`` referring to the first run that meets
        them), plus ``insulin_free_run`` (the run criterion alone), ``hba1c_visit_day`` and
        ``cpeptide_visit_day`` (first visit meeting each condition in the first qualifying
        run) and ``flag_no_visit_in_run`` (a long-enough run had no usable visit).

    Raises
    ------
    ValueError
        Bad tables, missing measurement columns for an enabled condition, bad unit.
    """
    if cpeptide_unit not in ("ng/mL", "nmol/L"):
        raise ValueError(f"cpeptide_unit must be 'ng/mL' or 'nmol/L', got {cpeptide_unit!r}")
    base = insulin_independence(
        insulin,
        window=window,
        min_consecutive_days=min_consecutive_days,
        participants=participants,
    )
    need = ["id", "day"] + (["hba1c"] if hba1c_max is not None else [])
    v = _require(visits, "visits", need)
    cp_cols = [c for c in ("cpeptide_fasting", "cpeptide_stimulated") if c in v.columns]
    if cpeptide_min is not None and not cp_cols:
        raise ValueError("visits: missing column 'cpeptide_fasting' and/or 'cpeptide_stimulated'")
    vv = pd.DataFrame({"id": v["id"].to_numpy()})
    vv["day"] = _numeric_col(v, "visits", "day", allow_nan=False).to_numpy()
    ok_a1c = np.ones(len(v), dtype=bool)
    if hba1c_max is not None:
        a1c = _numeric_col(v, "visits", "hba1c", allow_nan=True)
        _check_range(a1c, "visits.hba1c", "%", 2.0, 25.0, "mmol/mol given?")
        a = a1c.to_numpy()
        with np.errstate(invalid="ignore"):
            ok_a1c = (a <= hba1c_max) if hba1c_max_inclusive else (a < hba1c_max)
    ok_cp = np.ones(len(v), dtype=bool)
    if cpeptide_min is not None:
        ok_cp = np.zeros(len(v), dtype=bool)
        for c in cp_cols:
            x = _numeric_col(v, "visits", c, allow_nan=True).to_numpy()
            if (x < 0).any():
                raise ValueError(f"visits: column {c!r} has negative values")
            with np.errstate(invalid="ignore"):
                ok_cp |= x >= cpeptide_min
    vv["ok_a1c"], vv["ok_cp"] = ok_a1c, ok_cp

    runs = insulin_free_runs(insulin, window=window)
    runs = runs[runs["n_days"] >= min_consecutive_days].reset_index(drop=True)
    runs["run"] = np.arange(len(runs))
    m = runs.merge(vv, on="id", how="inner")
    m = m[(m["day"] >= m["start_day"]) & (m["day"] <= m["end_day"])]
    first_a1c = m[m["ok_a1c"]].groupby("run")["day"].min()
    first_cp = m[m["ok_cp"]].groupby("run")["day"].min()
    runs["hba1c_visit_day"] = runs["run"].map(first_a1c)
    runs["cpeptide_visit_day"] = runs["run"].map(first_cp)
    qualifies = runs["hba1c_visit_day"].notna() & runs["cpeptide_visit_day"].notna()

    daily = _daily_insulin(insulin)
    lo, hi = _window(window, "window") if window is not None else (-np.inf, np.inf)
    out = _independence_table(base["id"], runs, _recorded_days(daily, lo, hi), qualifies)
    out["longest_run_days"] = base["longest_run_days"].to_numpy()
    out["insulin_free_run"] = base["insulin_independent"].to_numpy()
    q = runs[qualifies].sort_values(["id", "start_day"]).groupby("id").first()
    out["hba1c_visit_day"] = out["id"].map(q["hba1c_visit_day"]).astype(float)
    out["cpeptide_visit_day"] = out["id"].map(q["cpeptide_visit_day"]).astype(float)
    seen = m.groupby("id").size()
    out["flag_no_visit_in_run"] = out["insulin_free_run"] & ~out["id"].isin(seen.index)
    return out


# --------------------------------------------------------------------------------------------
# Zimislecel (Reichman et al. NEJM 2025)


def zimislecel_primary(
    participants: pd.DataFrame,
    visits: pd.DataFrame,
    events: pd.DataFrame,
    *,
    she_window: tuple[float, float] = ZIMISLECEL_SHE_WINDOW,
    hba1c_window: tuple[float, float] = ZIMISLECEL_HBA1C_WINDOW,
    hba1c_below: float = 7.0,
    hba1c_min_decrease: float = 1.0,
    severe_terms: Collection[str] = (SEVERE_HYPOGLYCEMIA_TERM,),
    require_complete_followup: bool = True,
) -> pd.DataFrame:
    """Zimislecel part C primary end point, per participant.

    Reichman TW et al. *NEJM* 2025;393:858 [V: abstract]: "freedom from severe hypoglycemic
    events during days 90 through 365, with a glycated hemoglobin level of less than 7% or
    a decrease of at least 1 percentage point from baseline ... at one or more time points
    between days 180 and 365". Both parts must hold.

    Rules:

    * Severe part: no event with ``term`` in *severe_terms* on a day in *she_window*
      (inclusive: an event on day 89 does not count, on day 90 and day 365 it does).
    * HbA1c part: at least one visit in *hba1c_window* (inclusive) with a measured HbA1c
      that is ``< hba1c_below`` (strict: 7.0 fails) or ``baseline - hba1c >=
      hba1c_min_decrease`` (7.9 -> 6.9 passes; compared with a 1e-9 tolerance so that
      one-decimal values are not lost to binary rounding).
    * Missing data: a participant with no measured HbA1c in the window is a non-responder
      (``flag_no_hba1c_in_window``); with a missing baseline HbA1c only the ``< 7 %`` route
      is available (``flag_missing_baseline_hba1c``). With no events table rows a
      participant is free of events. If ``participants`` has ``last_followup_day`` and it
      is before the end of either window, ``flag_incomplete_followup`` is set and, with
      ``require_complete_followup`` (default), the participant is a non-responder (events
      after withdrawal cannot be excluded). Without that column complete follow-up is
      assumed.

    Parameters
    ----------
    participants
        ``id``, ``baseline_hba1c`` (%), optional ``last_followup_day``.
    visits
        ``id``, ``day``, ``hba1c`` (%).
    events
        ``id``, ``day``, ``term``.
    she_window, hba1c_window
        Inclusive study-day windows (defaults 90-365 and 180-365).
    hba1c_below, hba1c_min_decrease
        HbA1c target (%, strict) and the minimum decrease from baseline (percentage points).
    severe_terms
        Event terms that count as severe hypoglycaemia.
    require_complete_followup
        See above.

    Returns
    -------
    pandas.DataFrame
        One row per participant in ``participants`` order: ``id``, ``responder``,
        ``she_free``, ``n_she_in_window``, ``first_she_day``, ``hba1c_criterion``,
        ``first_qualifying_visit_day``, ``first_qualifying_hba1c``, ``qualifying_reason``
        (``"below_target"``, ``"decrease"``, ``"both"`` or None), ``n_hba1c_in_window``,
        ``flag_no_hba1c_in_window``, ``flag_missing_baseline_hba1c``,
        ``flag_incomplete_followup``.

    Raises
    ------
    ValueError
        Missing columns, ids not in ``participants``, missing days, HbA1c outside 2-25 %
        (mmol/mol given?).
    """
    s_lo, s_hi = _window(she_window, "she_window")
    h_lo, h_hi = _window(hba1c_window, "hba1c_window")
    if isinstance(severe_terms, str):
        severe_terms = (severe_terms,)
    p = _participants(participants, need_baseline=True)
    v = _require(visits, "visits", ["id", "day", "hba1c"])
    e = _require(events, "events", ["id", "day", "term"])
    _known_ids(v, "visits", p["id"])
    _known_ids(e, "events", p["id"])

    # severe hypoglycaemia
    e_day = _numeric_col(e, "events", "day", allow_nan=False)
    is_she = e["term"].isin(list(severe_terms)).to_numpy()
    in_win = ((e_day >= s_lo) & (e_day <= s_hi)).to_numpy()
    keep = is_she & in_win
    she = pd.DataFrame({"id": e["id"].to_numpy()[keep], "day": e_day.to_numpy()[keep]})
    n_she = she.groupby("id").size()
    first_she = she.groupby("id")["day"].min()

    # HbA1c
    v_day = _numeric_col(v, "visits", "day", allow_nan=False)
    a1c = _numeric_col(v, "visits", "hba1c", allow_nan=True)
    _check_range(a1c, "visits.hba1c", "%", 2.0, 25.0, "mmol/mol given?")
    vis = pd.DataFrame({"id": v["id"].to_numpy(), "day": v_day.to_numpy(), "hba1c": a1c.to_numpy()})
    vis = vis[(vis["day"] >= h_lo) & (vis["day"] <= h_hi) & vis["hba1c"].notna()]
    vis = vis.merge(p[["id", "baseline_hba1c"]], on="id", how="left")
    below = (vis["hba1c"] < hba1c_below).to_numpy()
    with np.errstate(invalid="ignore"):
        drop = (vis["baseline_hba1c"] - vis["hba1c"] >= hba1c_min_decrease - _EPS).to_numpy()
    vis["reason"] = np.select(
        [below & drop, below, drop], ["both", "below_target", "decrease"], default=None
    )
    n_a1c = vis.groupby("id").size()
    qual = vis[below | drop].sort_values(["id", "day"]).groupby("id").first()

    out = pd.DataFrame({"id": p["id"].to_numpy()})
    out["n_she_in_window"] = out["id"].map(n_she).fillna(0).astype(int)
    out["first_she_day"] = out["id"].map(first_she).astype(float)
    out["she_free"] = out["n_she_in_window"] == 0
    out["hba1c_criterion"] = out["id"].isin(qual.index)
    out["first_qualifying_visit_day"] = out["id"].map(qual["day"]).astype(float)
    out["first_qualifying_hba1c"] = out["id"].map(qual["hba1c"]).astype(float)
    out["qualifying_reason"] = out["id"].map(qual["reason"]).astype(object)
    out["qualifying_reason"] = out["qualifying_reason"].where(out["hba1c_criterion"], None)
    out["n_hba1c_in_window"] = out["id"].map(n_a1c).fillna(0).astype(int)
    out["flag_no_hba1c_in_window"] = out["n_hba1c_in_window"] == 0
    out["flag_missing_baseline_hba1c"] = p["baseline_hba1c"].isna().to_numpy()
    out["flag_incomplete_followup"] = _incomplete(p, max(s_hi, h_hi))
    out["responder"] = out["she_free"] & out["hba1c_criterion"]
    if require_complete_followup:
        out["responder"] &= ~out["flag_incomplete_followup"]
    first = ["id", "responder"]
    return out[first + [c for c in out.columns if c not in first]]


def _incomplete(p: pd.DataFrame, end_day: float) -> np.ndarray:
    if "last_followup_day" not in p.columns:
        return np.zeros(len(p), dtype=bool)
    return (p["last_followup_day"] < end_day).to_numpy()


def zimislecel_secondary(
    insulin: pd.DataFrame,
    participants: pd.DataFrame,
    *,
    window: tuple[float, float] = ZIMISLECEL_INSULIN_WINDOW,
    definition: SecondaryDefinition = "entire_window",
    min_consecutive_days: int = 14,
    require_complete_followup: bool = True,
) -> pd.DataFrame:
    """Zimislecel part C secondary end point: insulin independence between days 180 and 365.

    Reichman TW et al. *NEJM* 2025;393:858 [V: wording]; the operational definition used in
    the paper is not available to us [U], so it is a parameter:

    * ``"entire_window"`` (default, the literal and strictest reading): a recorded
      insulin-free day on *every* day of the window (180 through 365).
    * ``"through_end"``: insulin-free from some day in the window through the end of the
      window (day 365), for at least ``min_consecutive_days`` days — "insulin independent
      at 1 year", the way the results were reported (10/12 at 1 year).
    * ``"any_run"``: an insulin-free run of >= ``min_consecutive_days`` days anywhere in the
      window (CIT-style independence at some point).

    Missing insulin days break runs (so a gap fails ``"entire_window"``; it is counted in
    ``n_missing_days``). A participant with ``last_followup_day`` before the window's end
    is flagged and, with ``require_complete_followup``, not independent.

    Parameters
    ----------
    insulin
        Daily insulin table (``id``, ``day``, ``insulin_u``).
    participants
        ``id``, optional ``last_followup_day``: fixes the participant list and order.
    window
        Inclusive study-day window (default 180-365).
    definition
        ``"entire_window"``, ``"through_end"`` or ``"any_run"``.
    min_consecutive_days
        Minimum run for ``"through_end"`` and ``"any_run"`` (default 14).
    require_complete_followup
        See above.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``insulin_independent``, ``independent_from_day`` (start of the qualifying
        run), ``longest_run_days``, ``n_days_recorded``, ``n_missing_days`` (window days
        without a record), ``flag_no_insulin_data``, ``flag_incomplete_followup``,
        ``definition``.

    Raises
    ------
    ValueError
        Bad tables, unknown *definition*, ``min_consecutive_days < 1``.
    """
    if definition not in ("entire_window", "through_end", "any_run"):
        raise ValueError(
            f"definition must be 'entire_window', 'through_end' or 'any_run', got {definition!r}"
        )
    if int(min_consecutive_days) != min_consecutive_days or min_consecutive_days < 1:
        raise ValueError(
            f"min_consecutive_days must be a positive integer, got {min_consecutive_days}"
        )
    lo, hi = _window(window, "window")
    p = _participants(participants, need_baseline=False)
    daily = _daily_insulin(insulin)
    _known_ids(daily, "insulin", p["id"])
    runs = insulin_free_runs(insulin, window=window)
    if definition == "entire_window":
        qualifies = (runs["start_day"] <= lo) & (runs["end_day"] >= hi)
    elif definition == "through_end":
        qualifies = (runs["end_day"] >= hi) & (runs["n_days"] >= min_consecutive_days)
    else:
        qualifies = runs["n_days"] >= min_consecutive_days
    out = _independence_table(p["id"], runs, _recorded_days(daily, lo, hi), qualifies)
    out = out.rename(columns={"first_qualifying_start_day": "independent_from_day"})
    out = out.drop(columns=["first_qualifying_end_day"])
    n_window_days = int(np.floor(hi) - np.ceil(lo) + 1)
    out["n_missing_days"] = n_window_days - out["n_days_recorded"]
    out["flag_incomplete_followup"] = _incomplete(p, hi)
    if require_complete_followup:
        out["insulin_independent"] &= ~out["flag_incomplete_followup"]
        out.loc[~out["insulin_independent"], "independent_from_day"] = np.nan
    out["definition"] = definition
    return out


# --------------------------------------------------------------------------------------------
# Proportions


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) confidence interval for a binomial proportion.

    Clopper & Pearson, *Biometrika* 1934;26:404: lower = Beta(a/2; k, n-k+1), upper =
    Beta(1-a/2; k+1, n-k), with lower = 0 when k = 0 and upper = 1 when k = n.
    Uses :mod:`scipy.stats`.

    Parameters
    ----------
    successes
        Number of responders k (0 <= k <= n).
    n
        Number of participants (> 0).
    confidence
        Two-sided confidence level in (0, 1).

    Returns
    -------
    tuple of float
        ``(lower, upper)``.

    Raises
    ------
    ValueError
        Non-integer counts, k outside [0, n], n < 1 or a confidence outside (0, 1).
    """
    from scipy.stats import beta

    if int(successes) != successes or int(n) != n:
        raise ValueError(f"successes and n must be integers, got {successes}, {n}")
    k, n = int(successes), int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"successes must be in [0, n], got {k} of {n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    lower = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    upper = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lower, upper


def proportion_summary(
    flags: pd.Series | np.ndarray | Sequence[bool], confidence: float = 0.95
) -> pd.Series:
    """Responders n of N, the proportion and its exact (Clopper-Pearson) CI.

    Parameters
    ----------
    flags
        One boolean per participant (e.g. ``zimislecel_primary(...)["responder"]``). Missing
        values are not allowed: resolve them with the end point's missing-data rule first.
    confidence
        Two-sided confidence level (default 0.95).

    Returns
    -------
    pandas.Series
        ``n``, ``N``, ``proportion``, ``ci_low``, ``ci_high``, ``confidence``.

    Raises
    ------
    ValueError
        Empty input, missing or non-boolean values.
    """
    s = pd.Series(flags)
    if s.empty:
        raise ValueError("flags: no participants")
    if s.isna().any():
        raise ValueError("flags: missing values; apply the end point's missing-data rule first")
    if not all(isinstance(x, bool | np.bool_) for x in s.to_numpy()):
        raise ValueError("flags: values must be boolean")
    k, n = int(s.sum()), len(s)
    lo, hi = clopper_pearson(k, n, confidence)
    return pd.Series(
        {
            "n": k,
            "N": n,
            "proportion": k / n,
            "ci_low": lo,
            "ci_high": hi,
            "confidence": confidence,
        },
        dtype=object,
    )


__all__ = [
    "SEVERE_HYPOGLYCEMIA_TERM",
    "ZIMISLECEL_HBA1C_WINDOW",
    "ZIMISLECEL_INSULIN_WINDOW",
    "ZIMISLECEL_SHE_WINDOW",
    "clopper_pearson",
    "insulin_free_runs",
    "insulin_independence",
    "insulin_independence_cit",
    "proportion_summary",
    "zimislecel_primary",
    "zimislecel_secondary",
]
