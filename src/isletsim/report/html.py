"""Self-contained HTML CGM report, one page per participant.

Each page embeds (base64) the one-page AGP report PNG of
:func:`isletsim.report.agp.plot_agp_report` -- metrics panel with the international
consensus targets (Battelino et al. 2019, Diabetes Care 42:1593), time-in-ranges bar,
ambulatory glucose profile and daily profiles in the layout of the IDC AGP report
(Johnson et al. 2019, Diabetes Technol Ther 21(S2):S217) -- and adds the full metrics
table and the counts of input rows that were rejected, by reason. The page has no
external resources (no scripts, style sheets or links), so it can be mailed or archived
as one file. All text taken from the data is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template

import pandas as pd

from isletsim.glucose_table import GlucoseTable
from isletsim.report.agp import TzLike, _as_float, assess_targets, plot_agp_report

METRIC_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "n_readings": ("Readings", ""),
    "days_of_wear": ("Days of wear", "days"),
    "percent_expected_readings": ("CGM active (readings / expected)", "%"),
    "mean": ("Mean glucose", "{units}"),
    "sd": ("Standard deviation", "{units}"),
    "cv": ("Coefficient of variation", "%"),
    "gmi": ("Glucose management indicator", "%"),
    "tbr_54": ("Time below 54 mg/dL (3.0 mmol/L)", "%"),
    "tbr_70": ("Time below 70 mg/dL (3.9 mmol/L)", "%"),
    "tbr_54_69": ("Time 54-69 mg/dL (3.0-3.8 mmol/L)", "%"),
    "tir_70_180": ("Time in range 70-180 mg/dL (3.9-10.0 mmol/L)", "%"),
    "tir_70_140": ("Time in tight range 70-140 mg/dL (3.9-7.8 mmol/L)", "%"),
    "tar_180": ("Time above 180 mg/dL (10.0 mmol/L)", "%"),
    "tar_181_250": ("Time 181-250 mg/dL (10.1-13.9 mmol/L)", "%"),
    "tar_250": ("Time above 250 mg/dL (13.9 mmol/L)", "%"),
    "lbgi": ("Low blood glucose index", ""),
    "hbgi": ("High blood glucose index", ""),
    "gri": ("Glycemia risk index", ""),
    "gri_hypo": ("GRI hypoglycemia component", ""),
    "gri_hyper": ("GRI hyperglycemia component", ""),
    "j_index": ("J-index", ""),
    "adrr": ("Average daily risk range", ""),
    "mage": ("Mean amplitude of glycemic excursions", "{units}"),
    "conga_1h": ("CONGA (1 h)", "{units}"),
    "modd": ("Mean of daily differences", "{units}"),
    "interval_min": ("Device reading interval", "min"),
    "expected_readings": ("Expected readings", ""),
    "days_span": ("Days spanned", "days"),
}
"""Labels and units of the summary columns shown in the metrics table."""

_PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="isletsim">
<title>CGM report - $pid</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 1.5em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
h2 { font-size: 1.1em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #e5e5e5; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.met { color: #2e7d32; font-weight: bold; }
.notmet { color: #c62828; font-weight: bold; }
.meta { color: #555; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
footer { margin-top: 2em; font-size: 0.85em; color: #666; }
</style>
</head>
<body>
<h1>CGM report - $pid</h1>
<p class="meta">Source: $files<br>
Readings: $first to $last (time zone $tz); glucose in $units.</p>
<h2>Consensus targets</h2>
<table>
<thead><tr><th>Metric</th><th>Value</th><th>Target</th><th>Status</th></tr></thead>
<tbody>
$targets
</tbody>
</table>
<h2>Ambulatory glucose profile</h2>
<img alt="AGP report of $pid" src="data:image/png;base64,$png">
<h2>All metrics</h2>
<table>
<thead><tr><th>Metric</th><th>Column</th><th>Value</th><th>Unit</th></tr></thead>
<tbody>
$metrics
</tbody>
</table>
<h2>Rejected input rows</h2>
$rejected
<footer>Targets for most adults with type 1 or type 2 diabetes: Battelino T et al.,
Clinical targets for continuous glucose monitoring data interpretation: recommendations
from the international consensus on time in range, Diabetes Care 2019;42:1593-1603.
AGP layout: Johnson ML et al., Diabetes Technol Ther 2019;21(S2):S217-S225 (IDC AGP
report). Percentages are percent of readings. AGP bands: 5th, 25th, 50th, 75th and 95th
percentiles in $bin_minutes-minute bins of the modal day, unsmoothed.</footer>
</body>
</html>
"""
)


def rejected_counts(
    table: GlucoseTable, sources: Mapping[str, Sequence[str]] | None = None
) -> dict[str, dict[str, int]]:
    """Counts of rejected input rows by reason, per participant.

    Rejected rows are attributed to a participant by the ``id`` column of
    ``table.rejected`` when a reader provides one; otherwise by source file via
    ``sources`` (participant id -> files its readings came from), so a participant gets
    the rejected rows of its file(s); otherwise, with a single participant, all rejected
    rows are its own. Without ``sources`` and with several participants every
    participant is given all rejected rows (they cannot be attributed).

    Parameters
    ----------
    table
        Glucose table with its ``rejected`` rows.
    sources
        Optional mapping participant id -> source file paths (as in ``rejected.file``).

    Returns
    -------
    dict
        ``{id: {reason: count}}`` for every participant of ``table`` and of ``sources``;
        reasons sorted alphabetically.
    """
    ids = [str(i) for i in table.ids]
    if sources is not None:
        ids += [str(i) for i in sources if str(i) not in ids]
    rej = table.rejected
    out: dict[str, dict[str, int]] = {}
    for pid in ids:
        if len(rej) == 0:
            sel = rej
        elif "id" in rej.columns:
            sel = rej[rej["id"].astype("string").fillna("") == pid]
        elif sources is not None:
            files = {str(f) for f in sources.get(pid, ())}
            sel = rej[rej["file"].astype("string").fillna("").isin(files)]
        else:
            sel = rej
        reasons = sel["reason"].astype("string").fillna("unknown") if len(sel) else []
        counts = pd.Series(reasons, dtype="string").value_counts()
        out[pid] = {str(k): int(v) for k, v in sorted(counts.items())}
    return out


def write_cgm_report(
    table: GlucoseTable,
    summary: pd.DataFrame,
    out_dir: str | Path,
    *,
    tz: TzLike = "UTC",
    units: str = "mg/dL",
    bin_minutes: int = 15,
    max_days: int | None = 14,
    sources: Mapping[str, Sequence[str]] | None = None,
    rejected: Mapping[str, Mapping[str, int]] | None = None,
) -> list[Path]:
    """Write the AGP report PNG and a self-contained HTML page per participant.

    Parameters
    ----------
    table
        Glucose readings (all participants) with their rejected rows.
    summary
        :func:`isletsim.metrics.summary.consensus_summary` of ``table`` computed in
        ``units``; one row per participant, with an ``id`` column.
    out_dir
        Directory to write into (created if missing).
    tz
        Participant's local time zone for the modal day and the daily profiles.
    units
        Units of ``summary`` and of the figures (``"mg/dL"`` or ``"mmol/L"``).
    bin_minutes, max_days
        AGP bin width and number of daily profiles (see
        :func:`isletsim.report.agp.plot_agp_report`).
    sources
        Participant id -> source files; shown on the page and used to attribute
        rejected rows (:func:`rejected_counts`).
    rejected
        Participant id -> {reason: count} of rejected rows, overriding the attribution
        of :func:`rejected_counts` (e.g. counted per file by the caller).

    Returns
    -------
    list of pathlib.Path
        For each participant, in summary order: ``<id>_agp.png`` and ``<id>.html``
        (``<id>`` made file-name safe and unique).
    """
    if "id" not in summary.columns:
        raise ValueError("summary must have an 'id' column")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = (
        {str(k): dict(v) for k, v in rejected.items()}
        if rejected is not None
        else rejected_counts(table, sources)
    )
    written: list[Path] = []
    used: set[str] = set()
    for _, row in summary.iterrows():
        pid = str(row["id"])
        stem = _unique_stem(pid, used)
        fig = plot_agp_report(
            table, row, id=pid, tz=tz, units=units, bin_minutes=bin_minutes, max_days=max_days
        )
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        png = buf.getvalue()
        png_path = out / f"{stem}_agp.png"
        png_path.write_bytes(png)

        one = table.subset([pid]).data["time"]
        local = one.dt.tz_convert(tz) if len(one) else one
        first = local.min().strftime("%Y-%m-%d %H:%M") if len(one) else "n/a"
        last = local.max().strftime("%Y-%m-%d %H:%M") if len(one) else "n/a"
        files = list(sources.get(pid, ())) if sources is not None else []
        page = _PAGE.substitute(
            pid=html.escape(pid),
            files=html.escape(", ".join(str(f) for f in files) or "(in-memory table)"),
            first=html.escape(first),
            last=html.escape(last),
            tz=html.escape(str(tz)),
            units=html.escape(units),
            targets=_targets_rows(row, units),
            png=base64.b64encode(png).decode("ascii"),
            metrics=_metrics_rows(row, units),
            rejected=_rejected_block(counts.get(pid, {})),
            bin_minutes=int(bin_minutes),
        )
        html_path = out / f"{stem}.html"
        html_path.write_text(page, encoding="utf-8")
        written += [png_path, html_path]
    return written


# --------------------------------------------------------------------------- helpers
def _unique_stem(pid: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", pid).strip("._") or "participant"
    stem, k = base, 2
    while stem.lower() in used:
        stem = f"{base}_{k}"
        k += 1
    used.add(stem.lower())
    return stem


def _cell(value: object) -> str:
    v = _as_float(value)
    if v is None:
        return "n/a"
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{v:.0f}"
    return f"{v:.2f}" if abs(v) < 100 else f"{v:.1f}"


def _targets_rows(row: Mapping[str, object], units: str) -> str:
    lines = []
    for c in assess_targets(row):
        if c.met is None:
            status = '<td class="na">n/a</td>'
        elif c.met:
            status = '<td class="met">met</td>'
        else:
            status = '<td class="notmet">not met</td>'
        value = "n/a" if c.value is None else f"{c.value:.1f}%"
        lines.append(
            f"<tr><td>{html.escape(c.target.label_in(units))}</td>"
            f'<td class="num">{html.escape(value)}</td>'
            f"<td>{html.escape(c.target.text)}</td>{status}</tr>"
        )
    return "\n".join(lines)


def _metrics_rows(row: pd.Series, units: str) -> str:
    lines = []
    for key in row.index:
        if key == "id":
            continue
        label, unit = METRIC_DESCRIPTIONS.get(str(key), (str(key), ""))
        value = row[key]
        text = _cell(value) if _is_number(value) else ("n/a" if _missing(value) else str(value))
        lines.append(
            f"<tr><td>{html.escape(label)}</td><td><code>{html.escape(str(key))}</code></td>"
            f'<td class="num">{html.escape(text)}</td>'
            f"<td>{html.escape(unit.format(units=units))}</td></tr>"
        )
    return "\n".join(lines)


def _rejected_block(counts: Mapping[str, int]) -> str:
    if not counts:
        return "<p>No input rows were rejected.</p>"
    total = sum(counts.values())
    rows = "\n".join(
        f'<tr><td>{html.escape(reason)}</td><td class="num">{n}</td></tr>'
        for reason, n in counts.items()
    )
    return (
        "<table>\n<thead><tr><th>Reason</th><th>Rows</th></tr></thead>\n<tbody>\n"
        f"{rows}\n"
        f'<tr><th>Total</th><td class="num">{total}</td></tr>\n</tbody>\n</table>'
    )


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)
