"""CGM reports: the ambulatory glucose profile (AGP) and self-contained HTML pages.

See :mod:`isletsim.report.agp` (computation and figures; Battelino et al. 2019,
Diabetes Care 42:1593; Johnson et al. 2019, Diabetes Technol Ther 21(S2):S217) and
:mod:`isletsim.report.html` (one HTML page per participant) and
:mod:`isletsim.report.trial` (the self-contained HTML report of a virtual trial).
"""

from __future__ import annotations

from isletsim.report.agp import (
    AGP_PERCENTILES,
    CONSENSUS_TARGETS,
    agp_percentiles,
    assess_targets,
    plot_agp,
    plot_agp_report,
    plot_daily_profiles,
)
from isletsim.report.html import rejected_counts, write_cgm_report
from isletsim.report.trial import write_trial_report

__all__ = [
    "AGP_PERCENTILES",
    "CONSENSUS_TARGETS",
    "agp_percentiles",
    "assess_targets",
    "plot_agp",
    "plot_agp_report",
    "plot_daily_profiles",
    "rejected_counts",
    "write_cgm_report",
    "write_trial_report",
]
