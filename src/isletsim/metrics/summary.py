"""One table of consensus CGM metrics per participant: :func:`consensus_summary`.

It joins the count-based metrics of :mod:`isletsim.metrics.consensus` with the
interpolation-based variability metrics MAGE, CONGA (1 h) and MODD of
:mod:`isletsim.metrics.variability` (imported when first needed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from isletsim.glucose_table import GlucoseTable
from isletsim.metrics.consensus import (
    RANGE_COLUMNS,
    SUFFICIENCY_COLUMNS,
    Period,
    _check_units,
    consensus_metrics,
    select_period,
)
from isletsim.units import MGDL_PER_MMOLL

__all__ = ["SUMMARY_COLUMNS", "VARIABILITY_COLUMNS", "consensus_summary"]

#: Variability columns (glucose units), from :mod:`isletsim.metrics.variability`.
VARIABILITY_COLUMNS: tuple[str, ...] = ("mage", "conga_1h", "modd")

#: Columns of :func:`consensus_summary`, in order.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "id",
    "n_readings",
    "mean",
    "sd",
    "cv",
    "gmi",
    *RANGE_COLUMNS,
    "lbgi",
    "hbgi",
    "gri",
    "gri_hypo",
    "gri_hyper",
    "j_index",
    "adrr",
    *VARIABILITY_COLUMNS,
    *SUFFICIENCY_COLUMNS,
)


def _variability(table: GlucoseTable, ids: pd.Index, units: str, tz: str) -> pd.DataFrame:
    """MAGE, CONGA(1 h), MODD per participant (NaN for participants without readings)."""
    out = pd.DataFrame(np.nan, index=ids, columns=list(VARIABILITY_COLUMNS))
    if len(table) == 0:
        return out
    # lazy: the variability kernels are numba-compiled on first use
    from isletsim.metrics import variability
    from isletsim.metrics.grid import regular_grid

    grid = regular_grid(table, tz=tz)  # CONGA and MODD share the native-interval grid
    values = {
        "mage": variability.mage(table, tz=tz),  # MAGE always uses a 5-minute grid
        "conga_1h": variability.conga(grid, hours=1),
        "modd": variability.modd(grid),
    }
    key = ids.astype(str)
    for name, s in values.items():
        s = pd.Series(s)
        s.index = s.index.astype(str)
        col = s.reindex(key).to_numpy(dtype=np.float64, na_value=np.nan)
        out[name] = col if units == "mg/dL" else col / MGDL_PER_MMOLL
    return out


def consensus_summary(
    table: GlucoseTable,
    *,
    units: str = "mg/dL",
    period: object = None,
    tz: str = "UTC",
    interval_min: float | None = None,
) -> pd.DataFrame:
    """Consensus CGM summary, one row per participant.

    Parameters
    ----------
    table
        Glucose table with any number of participants.
    units
        ``"mg/dL"`` or ``"mmol/L"``: units of ``mean``, ``sd``, ``mage``, ``conga_1h``,
        ``modd``, and which consensus cut-off set is used for the ranges (see
        :mod:`isletsim.metrics.consensus`).
    period
        ``None`` (all data), ``(start, end)`` (half-open window; bounds may be per-participant
        Series), ``"day"``/``"night"``, or a :class:`~isletsim.metrics.consensus.Period`.
    tz
        Local time zone for ADRR days, the day/night split and the day boundaries of the
        MODD/CONGA/MAGE grid.
    interval_min
        Device interval in minutes for data sufficiency (default: median gap per participant).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS` (``id`` first), one row per participant of ``table`` in
        table order. Percentages are percent of readings; ``gmi`` is in %; ``lbgi``, ``hbgi``,
        ``gri*``, ``j_index``, ``adrr`` are unit-free. A participant without readings in the
        period has ``n_readings == 0`` and NaN metrics.

    Raises
    ------
    MetricsError
        If the table is empty, a glucose value is not positive, or the period is invalid.

    Examples
    --------
    >>> from isletsim import GlucoseTable
    >>> import pandas as pd
    >>> t = pd.date_range("2024-01-01", periods=4, freq="5min", tz="UTC")
    >>> table = GlucoseTable.from_frame(pd.DataFrame({"id": "a", "time": t, "gl": 100.0}))
    >>> consensus_summary(table)[["id", "mean", "tir_70_180"]]
      id   mean  tir_70_180
    0  a  100.0       100.0
    """
    units = _check_units(units)
    p = Period.coerce(period)
    base = consensus_metrics(table, units=units, period=p, tz=tz, interval_min=interval_min)
    whole = p.start is None and p.end is None and p.part == "all"
    selected = table if whole else select_period(table, p, tz=tz)
    var = _variability(selected, base.index, units, tz)
    out = pd.concat([base, var], axis=1)
    out.index.name = "id"
    out = out.reset_index()
    return out.loc[:, list(SUMMARY_COLUMNS)]
