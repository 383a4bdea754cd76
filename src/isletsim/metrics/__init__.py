"""Clinical metrics computed from a :class:`~isletsim.glucose_table.GlucoseTable`.

Modules: :mod:`~isletsim.metrics.consensus` (consensus CGM metrics, per participant, per
period, day/night) and :mod:`~isletsim.metrics.summary` (one table with all of them).
"""

from __future__ import annotations

# --- consensus CGM metrics (consensus.py, summary.py) ---------------------------------------
from isletsim.metrics.consensus import (
    THRESHOLDS_MGDL,
    THRESHOLDS_MMOLL,
    MetricsError,
    Period,
    adrr,
    bg_risk,
    consensus_metrics,
    cv_glucose,
    data_sufficiency,
    day_night_metrics,
    glucose_management_indicator,
    glucose_stats,
    gri,
    hbgi,
    j_index,
    kovatchev_f,
    lbgi,
    mean_glucose,
    period_metrics,
    sd_glucose,
    select_period,
    time_in_ranges,
)
from isletsim.metrics.summary import SUMMARY_COLUMNS, consensus_summary

# --- other metric modules (variability, episodes, hba1c, igls, scores, endpoints) -----------
# (exports added by their authors)

__all__ = [
    # consensus.py / summary.py
    "SUMMARY_COLUMNS",
    "THRESHOLDS_MGDL",
    "THRESHOLDS_MMOLL",
    "MetricsError",
    "Period",
    "adrr",
    "bg_risk",
    "consensus_metrics",
    "consensus_summary",
    "cv_glucose",
    "data_sufficiency",
    "day_night_metrics",
    "glucose_management_indicator",
    "glucose_stats",
    "gri",
    "hbgi",
    "j_index",
    "kovatchev_f",
    "lbgi",
    "mean_glucose",
    "period_metrics",
    "sd_glucose",
    "select_period",
    "time_in_ranges",
    # other modules
]
