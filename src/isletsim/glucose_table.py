"""The tidy glucose table every metric consumes.

One row per glucose reading, sorted by participant then time:

========== ======================== =====================================================
column     dtype                    meaning
========== ======================== =====================================================
id         string                   participant identifier
time       datetime64[ns, UTC]      reading time, UTC
glucose    float64                  glucose in mg/dL (always mg/dL internally)
source_row Int64 (nullable)         row of the input it came from: 1-based line for CSV
                                    files, 0-based record index for JSON, 0-based row
                                    position for frames (<NA> if none)
flag       string                   "" for a plain reading, or why the value is special:
                                    "low" (device said Low, stored at the device floor),
                                    "high" (device said High, stored at the device ceiling)
========== ======================== =====================================================

Rows that cannot be used live in a second table, ``rejected``, with columns
``file, row, field, value, reason`` so that every input row is either used or reported.

Units: 1 mmol/L = 18.016 mg/dL (see :mod:`isletsim.units`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from isletsim.units import MGDL_PER_MMOLL

COLUMNS: tuple[str, ...] = ("id", "time", "glucose", "source_row", "flag")
REJECTED_COLUMNS: tuple[str, ...] = ("file", "row", "field", "value", "reason")
UNITS = ("mg/dL", "mmol/L")


class GlucoseTableError(ValueError):
    """Input that cannot become a glucose table (names the field that is wrong)."""


def empty_rejected() -> pd.DataFrame:
    """An empty rejected-rows table with the standard columns."""
    return pd.DataFrame(
        {
            "file": pd.Series(dtype="string"),
            "row": pd.Series(dtype="Int64"),
            "field": pd.Series(dtype="string"),
            "value": pd.Series(dtype="string"),
            "reason": pd.Series(dtype="string"),
        }
    )


@dataclass(frozen=True)
class GlucoseTable:
    """Glucose readings of one or more participants in the tidy layout.

    Build one with :meth:`from_frame` (pandas or polars input) or receive one from
    :func:`isletsim.read_cgm`. ``data`` follows :data:`COLUMNS`; ``rejected`` lists input
    rows that were not used, with the reason.
    """

    data: pd.DataFrame
    rejected: pd.DataFrame = field(default_factory=empty_rejected)

    @classmethod
    def from_frame(
        cls,
        frame: object,
        *,
        id: str = "id",
        time: str = "time",
        glucose: str = "gl",
        units: str = "mg/dL",
        tz: str = "UTC",
        flag: str | None = None,
        source_row: str | None = None,
        default_id: str | None = None,
        rejected: pd.DataFrame | None = None,
    ) -> GlucoseTable:
        """Build a table from a pandas or polars data frame.

        Parameters
        ----------
        frame
            pandas or polars DataFrame.
        id, time, glucose
            Column names of participant id, timestamp and glucose value. The defaults
            follow iglu's ``id, time, gl``.
        units
            ``"mg/dL"`` or ``"mmol/L"``; mmol/L is converted with 18.016 mg/dL per mmol/L.
        tz
            Time zone of naive timestamps (aware timestamps keep their own offset).
        flag, source_row
            Optional columns carrying flags and the original row number.
        default_id
            Id to use when the frame has no ``id`` column (single-participant data).
        rejected
            Rows already rejected upstream (by a reader), carried along.
        """
        df = _to_pandas(frame)
        if units not in UNITS:
            raise GlucoseTableError(f"units must be one of {UNITS}, got {units!r}")
        missing = [c for c in (time, glucose) if c not in df.columns]
        if id not in df.columns and default_id is None:
            missing.insert(0, id)
        if missing:
            raise GlucoseTableError(
                f"missing column(s) {missing}; available columns: {list(df.columns)}"
            )
        ids = (
            df[id].astype("string")
            if id in df.columns
            else pd.Series(default_id, index=df.index, dtype="string")
        )
        t = pd.to_datetime(df[time], errors="raise")
        if getattr(t.dt, "tz", None) is None:
            t = t.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        t = t.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        g = pd.to_numeric(df[glucose], errors="raise").astype("float64")
        if units == "mmol/L":
            g = g * MGDL_PER_MMOLL
        rows = (
            df[source_row].astype("Int64")
            if source_row is not None
            else pd.Series(np.arange(len(df)), index=df.index, dtype="Int64")
        )
        flags = (
            df[flag].astype("string").fillna("")
            if flag is not None
            else pd.Series("", index=df.index, dtype="string")
        )
        data = pd.DataFrame(
            {"id": ids, "time": t, "glucose": g, "source_row": rows, "flag": flags}
        )
        return cls.from_tidy(data, rejected=rejected)

    @classmethod
    def from_tidy(cls, data: pd.DataFrame, rejected: pd.DataFrame | None = None) -> GlucoseTable:
        """Wrap a frame that already has :data:`COLUMNS` (checks and sorts it)."""
        missing = [c for c in COLUMNS if c not in data.columns]
        if missing:
            raise GlucoseTableError(f"tidy glucose frame lacks column(s) {missing}")
        data = data.loc[:, list(COLUMNS)].sort_values(["id", "time"], kind="stable")
        data = data.reset_index(drop=True)
        rej = empty_rejected() if rejected is None else rejected.reset_index(drop=True)
        return cls(data=data, rejected=rej)

    # ------------------------------------------------------------------ views
    @property
    def ids(self) -> list[str]:
        """Participant ids in table order."""
        return list(pd.unique(self.data["id"]))

    def __len__(self) -> int:
        return len(self.data)

    def glucose_in(self, units: str = "mg/dL") -> pd.Series:
        """Glucose column in ``units`` (mg/dL or mmol/L)."""
        if units == "mg/dL":
            return self.data["glucose"]
        if units == "mmol/L":
            return self.data["glucose"] / MGDL_PER_MMOLL
        raise GlucoseTableError(f"units must be one of {UNITS}, got {units!r}")

    def subset(self, ids: Iterable[str]) -> GlucoseTable:
        """Rows of the given participants only."""
        keep = self.data["id"].isin(list(ids))
        return GlucoseTable(self.data[keep].reset_index(drop=True), self.rejected)

    def between(self, start: object, end: object) -> GlucoseTable:
        """Rows with ``start <= time < end`` (timestamps or strings; naive means UTC)."""
        s, e = _utc(start), _utc(end)
        t = self.data["time"]
        keep = (t >= s) & (t < e)
        return GlucoseTable(self.data[keep].reset_index(drop=True), self.rejected)

    def to_iglu(self, units: str = "mg/dL") -> pd.DataFrame:
        """Frame with iglu's columns ``id, time, gl`` (time naive UTC)."""
        return pd.DataFrame(
            {
                "id": self.data["id"].astype(str),
                "time": self.data["time"].dt.tz_convert("UTC").dt.tz_localize(None),
                "gl": self.glucose_in(units),
            }
        )

    def __repr__(self) -> str:
        n_ids = self.data["id"].nunique()
        return (
            f"GlucoseTable({len(self.data)} readings, {n_ids} participant(s), "
            f"{len(self.rejected)} rejected row(s))"
        )


def _utc(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _to_pandas(frame: object) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    to_pandas = getattr(frame, "to_pandas", None)
    if callable(to_pandas):  # polars, pyarrow
        out = to_pandas()
        if isinstance(out, pd.DataFrame):
            return out
    raise GlucoseTableError(
        f"expected a pandas or polars DataFrame, got {type(frame).__name__}"
    )
