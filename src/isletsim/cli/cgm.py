"""``isletsim cgm``: consensus metrics and AGP reports of real CGM recordings.

``isletsim cgm summary FILE...`` reads each file with :func:`isletsim.io.read_cgm`,
computes the international-consensus CGM metrics per participant with
:func:`isletsim.metrics.summary.consensus_summary` (Battelino et al. 2019, Diabetes Care
42:1593) and prints them as a table with the consensus targets (or, with ``--json``, as one
JSON list on stdout). ``--report DIR`` also writes the one-page ambulatory glucose profile
report (IDC AGP layout, Johnson et al. 2019, Diabetes Technol Ther 21(S2):S217) as PNG and
a self-contained HTML page per participant.

Input errors (unreadable file, bad format, a bad row/field) print one line to stderr and
exit with code 2.
"""

from __future__ import annotations

import json
import math
import warnings
import zoneinfo
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from isletsim.cli._app import app
from isletsim.glucose_table import GlucoseTable, empty_rejected

EXIT_INPUT_ERROR = 2

cgm_app = typer.Typer(
    help="Real CGM data: consensus metrics (Battelino 2019) and AGP reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Units(StrEnum):
    """Glucose display units."""

    mg_dl = "mg/dL"
    mmol_l = "mmol/L"


@cgm_app.callback()
def _cgm() -> None:
    """Real CGM data: consensus metrics (Battelino 2019) and AGP reports."""


def _check_tz(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise typer.BadParameter(f"unknown time zone {value!r} (use an IANA name)") from exc
    return value


def _check_bins(value: int) -> int:
    if not 5 <= value <= 15 or 1440 % value != 0:
        raise typer.BadParameter(
            f"must divide 1440 and lie in 5..15 (5, 6, 8, 9, 10, 12, 15), got {value}"
        )
    return value


@cgm_app.command("summary")
def summary(
    files: Annotated[
        list[Path],
        typer.Argument(help="CGM export file(s) (CSV/TSV/...; see --format).", show_default=False),
    ],
    format: Annotated[
        str,
        typer.Option("--format", "-f", help="Input format passed to read_cgm ('auto' detects)."),
    ] = "auto",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON list (one object per participant).")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write AGP report PNG + HTML per participant to DIR.",
            file_okay=False,
            dir_okay=True,
            metavar="DIR",
        ),
    ] = None,
    units: Annotated[
        Units, typer.Option("--units", help="Glucose units of the output.", case_sensitive=False)
    ] = Units.mg_dl,
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz",
            callback=_check_tz,
            help="IANA time zone of naive timestamps and of the AGP's modal day "
            "(default: reader default, AGP in UTC).",
        ),
    ] = None,
    bin_minutes: Annotated[
        int, typer.Option("--bin-minutes", callback=_check_bins, help="AGP bin width, minutes.")
    ] = 15,
) -> None:
    """Consensus CGM metrics per participant, optionally with AGP reports.

    Metrics and targets: Battelino et al., Diabetes Care 2019;42:1593. Report layout: IDC
    AGP report (Johnson et al., Diabetes Technol Ther 2019;21(S2):S217).
    """
    from isletsim.metrics.consensus import MetricsError
    from isletsim.metrics.summary import consensus_summary

    table, sources, rejected = _read_all(files, format=format, tz=tz)
    try:
        summ = consensus_summary(table, units=units.value, tz=tz or "UTC")
    except MetricsError as exc:
        _fail(f"{', '.join(str(f) for f in files)}: {exc}")
    records = summary_records(summ, sources, rejected, units=units.value)

    if json_out:
        typer.echo(json.dumps(records, indent=2, allow_nan=False))
    else:
        _print_tables(records, units=units.value)

    if report is not None:
        from isletsim.report.html import write_cgm_report

        try:
            written = write_cgm_report(
                table,
                summ,
                report,
                tz=tz or "UTC",
                units=units.value,
                bin_minutes=bin_minutes,
                sources=sources,
                rejected=rejected,
            )
        except OSError as exc:
            _fail(f"cannot write report to {report}: {exc.strerror or exc}", code=1)
        msg = f"wrote {len(written)} report file(s) to {report}"
        typer.echo(msg, err=json_out)


# --------------------------------------------------------------------------- reading
def _read_all(
    files: Sequence[Path], *, format: str, tz: str | None
) -> tuple[GlucoseTable, dict[str, list[str]], dict[str, dict[str, int]]]:
    """Read every file; return the combined table, id -> files, id -> rejected counts."""
    from isletsim.io import CGMFormatError, read_cgm
    from isletsim.report.html import rejected_counts

    datas: list[pd.DataFrame] = []
    rejects: list[pd.DataFrame] = []
    sources: dict[str, list[str]] = {}
    counts: dict[str, dict[str, int]] = {}
    for path in files:
        name = str(path)
        if not path.exists():
            _fail(f"{name}: no such file")
        if path.is_dir():
            _fail(f"{name}: is a directory, expected a CGM file")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t = read_cgm(path, format=format, tz=tz)
        except CGMFormatError as exc:
            _fail(_with_file(str(exc), path))
        except OSError as exc:
            _fail(f"{name}: cannot read: {exc.strerror or exc}")
        except (ValueError, UnicodeError) as exc:
            _fail(_with_file(str(exc), path))
        for w in caught:  # reader assumptions (e.g. UTC for naive times): one line each
            typer.echo(f"warning: {_with_file(str(w.message), path)}", err=True)
        if len(t.data):
            datas.append(t.data)
        if len(t.rejected):
            rejects.append(t.rejected)
        per_id = rejected_counts(t)
        if not t.ids:
            n_rej = _reason_counts(t.rejected)
            detail = ", ".join(f"{k}={v}" for k, v in n_rej.items()) or "none"
            typer.echo(
                f"warning: {name}: no usable glucose readings (rejected rows: {detail})",
                err=True,
            )
        for pid in t.ids:
            pid = str(pid)
            sources.setdefault(pid, [])
            if name not in sources[pid]:
                sources[pid].append(name)
            merged = counts.setdefault(pid, {})
            for reason, n in per_id.get(pid, {}).items():
                merged[reason] = merged.get(reason, 0) + n
    if not datas:
        _fail(f"no usable glucose readings in {', '.join(str(f) for f in files)}")
    data = pd.concat(datas, ignore_index=True)
    rej = pd.concat(rejects, ignore_index=True) if rejects else empty_rejected()
    table = GlucoseTable.from_tidy(data, rejected=rej)
    counts = {pid: dict(sorted(c.items())) for pid, c in counts.items()}
    return table, sources, counts


def _reason_counts(rejected: pd.DataFrame) -> dict[str, int]:
    if len(rejected) == 0:
        return {}
    vc = rejected["reason"].astype("string").fillna("unknown").value_counts()
    return {str(k): int(v) for k, v in sorted(vc.items())}


def _with_file(message: str, path: Path) -> str:
    """One-line message that names the file."""
    line = " ".join(message.split())
    if str(path) in line or path.name in line:
        return line
    return f"{path}: {line}"


def _fail(message: str, code: int = EXIT_INPUT_ERROR) -> NoReturn:
    """Print ``error: message`` (one line) to stderr and exit with ``code``."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code=code)


# --------------------------------------------------------------------------- output
def summary_records(
    summary: pd.DataFrame,
    sources: Mapping[str, Sequence[str]],
    rejected: Mapping[str, Mapping[str, int]],
    *,
    units: str,
) -> list[dict[str, Any]]:
    """JSON-ready records: the summary columns, ``rejected`` counts and source ``file``.

    NaN, infinities and missing values become ``None`` (JSON ``null``); numpy scalars
    become Python numbers. ``file`` is the source path (paths joined with ``", "`` when a
    participant's readings come from several files), ``files`` the list of paths.
    """
    records: list[dict[str, Any]] = []
    for _, row in summary.iterrows():
        pid = str(row["id"])
        rec: dict[str, Any] = {"id": pid}
        for key, value in row.items():
            if key != "id":
                rec[str(key)] = _jsonable(value)
        files = list(sources.get(pid, []))
        rec["units"] = units
        rec["rejected"] = dict(rejected.get(pid, {}))
        rec["file"] = ", ".join(files) if files else None
        rec["files"] = files
        records.append(rec)
    return records


def _jsonable(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    return str(value)


def _print_tables(records: Sequence[Mapping[str, Any]], *, units: str) -> None:
    from isletsim.report.agp import assess_targets
    from isletsim.report.html import METRIC_DESCRIPTIONS

    console = Console()
    skip = {"id", "units", "rejected", "file", "files"}
    for rec in records:
        checks = {c.target.key: c for c in assess_targets(rec)}
        title = escape(f"{rec['id']}  ({rec.get('file') or 'n/a'})")
        tab = Table(title=title, title_justify="left")
        tab.add_column("Metric")
        tab.add_column("Value", justify="right")
        tab.add_column("Unit")
        tab.add_column("Target")
        tab.add_column("Status")
        for key, value in rec.items():
            if key in skip:
                continue
            label, unit = METRIC_DESCRIPTIONS.get(key, (key, ""))
            check = checks.get(key)
            if check is None or check.met is None:
                status = ""
            else:
                status = "[green]met[/green]" if check.met else "[red]not met[/red]"
            tab.add_row(
                escape(label),
                _fmt_value(value),
                unit.format(units=units),
                check.target.text if check else "",
                status,
            )
        console.print(tab)
        rej = rec.get("rejected") or {}
        detail = ", ".join(f"{k}: {v}" for k, v in rej.items()) if rej else "none"
        console.print(f"Rejected rows: {detail}", markup=False, highlight=False)
        console.print()


def _fmt_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 100 else f"{value:.2f}"
    return str(value)


app.add_typer(cgm_app, name="cgm")
