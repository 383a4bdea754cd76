"""Clinical metrics computed from a :class:`~isletsim.glucose_table.GlucoseTable`.

Modules: :mod:`~isletsim.metrics.consensus` (consensus CGM metrics, per participant, per
period, day/night), :mod:`~isletsim.metrics.variability` (MAGE, CONGA, MODD on a regular
grid, :mod:`~isletsim.metrics.grid`), :mod:`~isletsim.metrics.episodes` (2023 consensus
hypo/hyperglycaemia episodes), :mod:`~isletsim.metrics.summary` (one table with all of them),
and the beta-cell replacement outcomes: :mod:`~isletsim.metrics.hba1c` (ADAG, GMI),
:mod:`~isletsim.metrics.igls` (Igls 1.0 / 2.0), :mod:`~isletsim.metrics.scores` (beta-score,
BETA-2) and :mod:`~isletsim.metrics.endpoints` (insulin independence, zimislecel endpoints).
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
from isletsim.metrics.endpoints import (
    clopper_pearson,
    insulin_free_runs,
    insulin_independence,
    insulin_independence_cit,
    proportion_summary,
    zimislecel_primary,
    zimislecel_secondary,
)
from isletsim.metrics.episodes import episode_summary, episodes
from isletsim.metrics.grid import Grid, regular_grid
from isletsim.metrics.hba1c import (
    estimated_average_glucose,
    gmi,
    gmi_mmol_mol,
    hba1c_from_mean_glucose,
)
from isletsim.metrics.igls import (
    Igls1Outcome,
    Igls2GraftFunction,
    Igls2Outcome,
    classify_igls1,
    classify_igls2,
    igls2_graft_function,
)
from isletsim.metrics.scores import beta2_score, beta_score
from isletsim.metrics.summary import SUMMARY_COLUMNS, consensus_summary
from isletsim.metrics.variability import conga, mage, modd

__all__ = [
    "SUMMARY_COLUMNS",
    "THRESHOLDS_MGDL",
    "THRESHOLDS_MMOLL",
    "Grid",
    "Igls1Outcome",
    "Igls2GraftFunction",
    "Igls2Outcome",
    "MetricsError",
    "Period",
    "adrr",
    "beta2_score",
    "beta_score",
    "bg_risk",
    "classify_igls1",
    "classify_igls2",
    "clopper_pearson",
    "conga",
    "consensus_metrics",
    "consensus_summary",
    "cv_glucose",
    "data_sufficiency",
    "day_night_metrics",
    "episode_summary",
    "episodes",
    "estimated_average_glucose",
    "glucose_management_indicator",
    "glucose_stats",
    "gmi",
    "gmi_mmol_mol",
    "gri",
    "hba1c_from_mean_glucose",
    "hbgi",
    "igls2_graft_function",
    "insulin_free_runs",
    "insulin_independence",
    "insulin_independence_cit",
    "j_index",
    "kovatchev_f",
    "lbgi",
    "mage",
    "mean_glucose",
    "modd",
    "period_metrics",
    "proportion_summary",
    "regular_grid",
    "sd_glucose",
    "select_period",
    "time_in_ranges",
    "zimislecel_primary",
    "zimislecel_secondary",
]
