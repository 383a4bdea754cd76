"""Self-contained HTML report of a virtual trial.

:func:`write_trial_report` turns a :class:`~isletsim.trial.result.TrialResult` into one
HTML file, ``report.html``, that opens offline: the style sheet is inline, every figure is
an embedded base64 PNG (matplotlib Agg canvas, no ``pyplot``), there are no scripts and no
external references, so the page can be mailed or archived as one file. All text taken
from the data is escaped with :func:`html.escape`.

Sections (each a ``<section id="...">`` with an ``<h2>``):

``consort``
    Participant flow in the style of the CONSORT 2010 flow diagram: screened, excluded
    (screen-failure reasons counted), eligible, enrolled per arm, dosed, completed,
    analysed (Schulz KF, Altman DG, Moher D, for the CONSORT Group. CONSORT 2010
    Statement: updated guidelines for reporting parallel group randomised trials.
    *BMJ* 2010;340:c332. doi:10.1136/bmj.c332).
``baseline``
    Baseline characteristics per arm (mean ± SD or n (%)), CONSORT 2010 item 15.
``endpoints``
    Endpoint table with the exact (Clopper-Pearson) or t 95 % interval of the result.
``published``
    Published figures against the simulated ones, within / outside marked.
``swimmer``
    Per-participant swimmer plot of follow-up, insulin use and events.
``trajectories``
    HbA1c, fasting and MMTT-peak C-peptide, TIR and insulin dose by visit.
``agp``
    Ambulatory glucose profile per arm at baseline and at the last visit, drawn with
    :func:`isletsim.report.agp.plot_agp` (5/25/50/75/95th percentiles of the modal day;
    Johnson ML et al. *Diabetes Technol Ther* 2019;21(S2):S217-S225; ranges and targets of
    Battelino T et al. *Diabetes Care* 2019;42:1593-1603).
``adverse-events``
    Adverse events by term and arm (CONSORT 2010 item 19, harms).

The result is used through its public, duck-typed interface only: ``protocol_name``,
``protocol_title``, ``seed``, ``arms``, ``visit_days``, the frames ``participants``,
``visits``, ``events``, ``daily``, ``cgm`` and ``endpoints`` (layouts in
:mod:`isletsim.trial.tables`) and ``compare_published()``.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import math
import os
import shlex
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from isletsim.glucose_table import GlucoseTable
from isletsim.report.agp import (
    HIGH_MGDL,
    LOW_MGDL,
    VERY_LOW_MGDL,
    _as_float,
    plot_agp,
)

#: Resolution of the embedded figures, dots per inch.
DPI = 90

#: Length of the CGM window that precedes a visit, days (the consensus minimum of 14 days
#: of CGM for a representative profile; Battelino et al. 2019).
CGM_WINDOW_DAYS = 14

MINUTES_PER_DAY = 1440

_ARM_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
_C_INSULIN = "#f2b38c"
_C_FREE = "#7fc97f"
_C_FOLLOWUP = "#e6e6e6"

_EPOCH = pd.Timestamp("2000-01-03", tz="UTC")

_NOT_RELATED = frozenset({"", "unrelated", "not related", "none", "no", "nan"})

_TRAJECTORIES: tuple[tuple[str, str], ...] = (
    ("hba1c_pct", "HbA1c (%)"),
    ("cpeptide_fasting_pmol_l", "Fasting C-peptide (pmol/L)"),
    ("cpeptide_mmtt_peak_pmol_l", "MMTT peak C-peptide (pmol/L)"),
    ("tir_pct", "Time in range 70-180 mg/dL (%)"),
    ("insulin_u_per_day", "Insulin dose (U/day)"),
)

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.1em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #bbb; }
h3 { font-size: 1.0em; margin: 1em 0 0.3em 0; }
nav { font-size: 0.9em; margin: 0.8em 0; }
nav a { margin-right: 0.9em; color: #1f4e8c; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #e3e3e3; text-align: left;
         vertical-align: top; }
thead th { border-bottom: 2px solid #999; background: #f6f6f6; }
th.grp { text-align: center; border-bottom: 1px solid #999; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.within { color: #2e7d32; font-weight: bold; }
td.outside { color: #c62828; font-weight: bold; }
.meta { color: #555; }
.note { color: #555; font-size: 0.88em; }
.empty { font-style: italic; color: #666; }
code { background: #f3f3f3; padding: 0.1em 0.3em; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; display: block;
      margin: 0.5em 0; }
.flow { display: flex; flex-direction: column; align-items: center; gap: 0.2em; }
.flow .row { display: flex; gap: 1.5em; align-items: flex-start; justify-content: center; }
.flow .arrow { color: #777; font-size: 1.2em; line-height: 1.1; }
.box { border: 1.5px solid #444; border-radius: 4px; padding: 0.45em 0.8em;
       background: #fafafa; min-width: 15em; max-width: 26em; font-size: 0.9em; }
.box.side { border-style: dashed; background: #fff; }
.box b.n { font-size: 1.05em; }
.box ul { margin: 0.3em 0 0 1.1em; padding: 0; }
.arms { display: flex; gap: 1.2em; justify-content: center; flex-wrap: wrap; }
.arm { display: flex; flex-direction: column; align-items: center; gap: 0.2em; }
.arm .box { min-width: 14em; }
footer { margin-top: 2.5em; font-size: 0.82em; color: #666;
         border-top: 1px solid #ccc; padding-top: 0.6em; }
"""


class TrialResultLike(Protocol):
    """What :func:`write_trial_report` needs of a trial result (duck-typed)."""

    protocol_name: str
    protocol_title: str
    seed: int
    arms: list[str]
    visit_days: list[int]
    participants: pd.DataFrame
    visits: pd.DataFrame
    events: pd.DataFrame
    daily: pd.DataFrame
    cgm: pd.DataFrame
    endpoints: pd.DataFrame

    def compare_published(self) -> pd.DataFrame:
        """Published figures against the simulated ones (layout ``PUBLISHED``)."""
        ...


# --------------------------------------------------------------------------- public API
def write_trial_report(result: TrialResultLike, out_dir: str | os.PathLike[str]) -> Path:
    """Write the self-contained HTML report of a virtual trial.

    Parameters
    ----------
    result
        A :class:`~isletsim.trial.result.TrialResult` or any object with the same
        attributes (see :class:`TrialResultLike`; table layouts in
        :mod:`isletsim.trial.tables`).
    out_dir
        Directory to write into (created if missing).

    Returns
    -------
    pathlib.Path
        ``out_dir/report.html``. The file is written to a temporary file in ``out_dir``
        first and moved into place with :func:`os.replace`, so a reader never sees a
        half-written report.

    Notes
    -----
    The page has no scripts and no external resources; figures are PNGs embedded as
    ``data:`` URIs at :data:`DPI` dots per inch. Participant flow after the CONSORT 2010
    statement (Schulz KF et al. *BMJ* 2010;340:c332); AGP after Johnson ML et al.
    *Diabetes Technol Ther* 2019;21(S2):S217 and Battelino T et al. *Diabetes Care*
    2019;42:1593.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = render_trial_report(result)
    target = out / "report.html"
    fd, tmp = tempfile.mkstemp(prefix=".report.", suffix=".html.tmp", dir=out)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def render_trial_report(result: TrialResultLike) -> str:
    """The HTML text of :func:`write_trial_report` (nothing is written).

    Parameters
    ----------
    result
        The trial result (see :func:`write_trial_report`).

    Returns
    -------
    str
        A complete HTML document.
    """
    arms = [str(a) for a in result.arms]
    participants = result.participants
    visits = result.visits
    events = result.events
    daily = result.daily
    cgm = result.cgm
    endpoints = result.endpoints
    published = result.compare_published()
    colours = _arm_colours(arms)

    name = str(result.protocol_name)
    title = str(result.protocol_title)
    seed = int(result.seed)
    visit_days = [int(d) for d in result.visit_days]
    sections = [
        ("consort", "Participant flow (CONSORT)", _consort_section(participants, endpoints, arms)),
        ("baseline", "Baseline characteristics", _baseline_section(participants, arms)),
        ("endpoints", "Endpoints", _endpoints_section(endpoints, arms)),
        (
            "published",
            "Published vs simulated",
            _published_section(published, list(getattr(result, "seeds", [result.seed]))),
        ),
        ("swimmer", "Swimmer plot", _swimmer_section(participants, daily, events, arms, colours)),
        ("trajectories", "Trajectories by visit", _trajectories_section(visits, arms, colours)),
        ("agp", "Ambulatory glucose profiles", _agp_section(cgm, arms, visit_days)),
        ("adverse-events", "Adverse events", _adverse_events_section(participants, events, arms)),
    ]
    nav = " ".join(f'<a href="#{sid}">{html.escape(h)}</a>' for sid, h, _ in sections)
    body = "\n".join(
        f'<section id="{sid}">\n<h2>{html.escape(h)}</h2>\n{content}\n</section>'
        for sid, h, content in sections
    )
    cmd = f"isletsim run {shlex.quote(name)} --seed {seed} --out DIR"
    arms_text = ", ".join(arms) if arms else "none"
    days_text = ", ".join(str(d) for d in visit_days) if visit_days else "none"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="isletsim">
<title>Virtual trial report - {html.escape(name)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>Virtual trial report: {html.escape(name)}</h1>
<p class="meta"><b>{html.escape(title)}</b><br>
Protocol <code>{html.escape(name)}</code>, seed <code>{seed}</code>; arms: {html.escape(arms_text)};
visit days: {html.escape(days_text)}.<br>
How to reproduce: <code>{html.escape(cmd)}</code></p>
<p class="note">In-silico trial: every participant is simulated. Study days count from the
infusion / allocation day 0; the run-in has negative days.</p>
<nav>{nav}</nav>
</header>
{body}
<footer>Participant flow after the CONSORT 2010 statement: Schulz KF, Altman DG, Moher D,
for the CONSORT Group. CONSORT 2010 Statement: updated guidelines for reporting parallel
group randomised trials. BMJ 2010;340:c332. Ambulatory glucose profile: Johnson ML et al.,
Diabetes Technol Ther 2019;21(S2):S217-S225 (IDC AGP report); glucose ranges: Battelino T
et al., Diabetes Care 2019;42:1593-1603. Generated by isletsim.</footer>
</body>
</html>
"""


# --------------------------------------------------------------------------- CONSORT
def _consort_section(
    participants: pd.DataFrame, endpoints: pd.DataFrame, arms: Sequence[str]
) -> str:
    p = participants
    if len(p) == 0:
        return _empty("No candidates were screened, so there is no participant flow.")
    eligible = _bool(p["eligible"])
    enrolled = _bool(p["enrolled"])
    dosed = _bool(p["dosed"])
    completed = _bool(p["completed"])
    died = p["death_day"].notna().to_numpy()
    arm_col = p["arm"].fillna("").astype(str).to_numpy()

    reasons = _split_reasons(p.loc[~eligible, "screen_failure"])
    reason_items = (
        "".join(f"<li>{html.escape(r)}: {n}</li>" for r, n in reasons.items())
        or "<li>reason not recorded</li>"
    )
    not_enrolled = int((eligible & ~enrolled).sum())

    arm_boxes = []
    for arm in arms:
        sel = enrolled & (arm_col == arm)
        n = int(sel.sum())
        n_dosed = int((sel & dosed).sum())
        infusion_arm = _arm_has_product(p[sel])
        if n == 0:
            dosed_text = "no participants allocated"
        elif infusion_arm or n_dosed:
            dosed_text = (
                f'Received infusion: <b class="n">{n_dosed}</b><br>Not dosed: {n - n_dosed}'
            )
        else:
            dosed_text = "No infusion in this arm (standard care)"
        n_comp = int((sel & completed).sum())
        n_died = int((sel & ~completed & died).sum())
        n_other = int((sel & ~completed & ~died).sum())
        analysed = endpoints.loc[endpoints["arm"].astype(str) == arm, "N"]
        analysed_text = (
            f'Analysed (largest endpoint N): <b class="n">{int(analysed.max())}</b>'
            if len(analysed)
            else "No endpoints computed"
        )
        arm_boxes.append(
            '<div class="arm">'
            f'<div class="box"><b>{html.escape(arm)}</b><br>Allocated / enrolled: '
            f'<b class="n">{n}</b></div><div class="arrow">&#8595;</div>'
            f'<div class="box">{dosed_text}</div><div class="arrow">&#8595;</div>'
            f'<div class="box">Completed follow-up: <b class="n">{n_comp}</b><br>'
            f"Did not complete: {n_died + n_other} (died {n_died}, withdrawn or lost "
            f'{n_other})</div><div class="arrow">&#8595;</div>'
            f'<div class="box">{analysed_text}</div></div>'
        )
    orphan = int((enrolled & ~np.isin(arm_col, list(arms))).sum())
    orphan_note = (
        f'<p class="note">{orphan} enrolled participant(s) have an arm that is not '
        "in the protocol.</p>"
        if orphan
        else ""
    )
    return f"""<div class="flow">
<div class="box">Screened (assessed for eligibility): <b class="n">{len(p)}</b></div>
<div class="arrow">&#8595;</div>
<div class="row">
<div class="box">Eligible: <b class="n">{int(eligible.sum())}</b></div>
<div class="box side">Excluded, did not meet eligibility criteria:
<b class="n">{int((~eligible).sum())}</b><ul>{reason_items}</ul></div>
</div>
<div class="arrow">&#8595;</div>
<div class="row">
<div class="box">Enrolled: <b class="n">{int(enrolled.sum())}</b></div>
<div class="box side">Eligible, not enrolled (arm full): <b class="n">{not_enrolled}</b></div>
</div>
<div class="arrow">&#8595;</div>
<div class="arms">{"".join(arm_boxes)}</div>
</div>
{orphan_note}
<p class="note">Flow diagram after the CONSORT 2010 statement (Schulz KF et al. BMJ
2010;340:c332). Screen-failure reasons are counted per criterion; a candidate who failed
several criteria is counted under each.</p>"""


def _split_reasons(values: pd.Series) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values.fillna("").astype(str):
        for part in v.split(";"):
            r = part.strip()
            if r:
                counts[r] = counts.get(r, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _arm_has_product(p: pd.DataFrame) -> bool:
    if len(p) == 0:
        return False
    dose = pd.to_numeric(p["dose"], errors="coerce").fillna(0.0)
    return bool((dose > 0).any())


# --------------------------------------------------------------------------- baseline
def _baseline_section(participants: pd.DataFrame, arms: Sequence[str]) -> str:
    p = participants[_bool(participants["enrolled"])] if len(participants) else participants
    if len(p) == 0:
        return _empty("No participants were enrolled, so there are no baseline data.")
    groups: list[tuple[str, pd.DataFrame]] = [(arm, p[p["arm"].astype(str) == arm]) for arm in arms]
    if len(arms) > 1:
        groups.append(("All enrolled", p))
    head = "".join(f'<th class="num">{html.escape(g)}</th>' for g, _ in groups)
    rows: list[str] = []

    def add(label: str, cells: Iterable[str], indent: bool = False) -> None:
        lab = f"&nbsp;&nbsp;&nbsp;{html.escape(label)}" if indent else html.escape(label)
        rows.append(
            f"<tr><td>{lab}</td>" + "".join(f'<td class="num">{c}</td>' for c in cells) + "</tr>"
        )

    add("Participants, n", (str(len(g)) for _, g in groups))
    cont = (
        ("Age, years", "age_years", 1),
        ("Body weight, kg", "body_weight_kg", 1),
        ("Diabetes duration, years", "diabetes_duration_years", 1),
        ("Gold score (1-7)", "gold_score", 1),
        ("Severe hypoglycaemic events, prior year", "severe_events_prior_year", 1),
        ("Baseline HbA1c, %", "baseline_hba1c_pct", 2),
        ("Baseline time in range 70-180 mg/dL, %", "baseline_tir_pct", 1),
        ("Baseline insulin, U/day", "baseline_insulin_u_per_day", 1),
    )
    for label, col, dec in cont[:3]:
        add(label + ", mean ± SD", (_mean_sd(g[col], dec) for _, g in groups))
    add("Female, n (%)", (_n_pct(g["sex"].astype(str) == "F") for _, g in groups))
    for label, col, dec in cont[3:]:
        add(label + ", mean ± SD", (_mean_sd(g[col], dec) for _, g in groups))
    add(
        "Gold score ≥ 4 (impaired awareness), n (%)",
        (_n_pct(pd.to_numeric(g["gold_score"], errors="coerce") >= 4) for _, g in groups),
    )
    therapies = ["mdi", "pump", "aid"]
    therapies += sorted(set(p["therapy"].fillna("").astype(str)) - set(therapies) - {""})
    labels = {
        "mdi": "multiple daily injections (MDI)",
        "pump": "insulin pump (CSII)",
        "aid": "automated insulin delivery (AID)",
    }
    add("Insulin therapy, n (%)", ("" for _ in groups))
    for t in therapies:
        add(
            labels.get(t, t),
            (_n_pct(g["therapy"].astype(str) == t) for _, g in groups),
            indent=True,
        )
    return (
        f"<table>\n<thead><tr><th>Characteristic</th>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n"
        '<p class="note">Enrolled participants; mean ± SD for continuous variables, '
        "n (%) for categories (CONSORT 2010 item 15). Baseline HbA1c at the end of "
        "run-in; TIR and insulin over the run-in.</p>"
    )


def _mean_sd(values: pd.Series, dec: int) -> str:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    ok = v[np.isfinite(v)]
    missing = v.size - ok.size
    if ok.size == 0:
        return "&ndash;"
    text = f"{ok.mean():.{dec}f}"
    if ok.size > 1:
        text += f" ± {ok.std(ddof=1):.{dec}f}"
    if missing:
        text += f" ({missing} missing)"
    return text


def _n_pct(mask: pd.Series) -> str:
    m = mask.fillna(False).to_numpy(dtype=bool)
    if m.size == 0:
        return "&ndash;"
    return f"{int(m.sum())} ({100.0 * m.mean():.0f}%)"


# --------------------------------------------------------------------------- endpoints
def _endpoints_section(endpoints: pd.DataFrame, arms: Sequence[str]) -> str:
    if len(endpoints) == 0:
        return _empty("No endpoints were computed for this protocol.")
    order = {a: i for i, a in enumerate(arms)}
    e = endpoints.assign(_o=endpoints["arm"].astype(str).map(order).fillna(len(order)))
    e = e.sort_values(["_o"], kind="stable")
    rows = []
    for _, r in e.iterrows():
        value, n, big_n = _f(r["value"]), _f(r["n"]), _f(r["N"])
        lo, hi = _f(r["ci_low"]), _f(r["ci_high"])
        binary = (
            value is not None
            and n is not None
            and big_n
            and abs(value - n / big_n) < 1e-9
            and 0.0 <= value <= 1.0
        )
        if binary:
            v_text = f"{100 * value:.1f}%"  # type: ignore[operator]
            ci = (
                f"{100 * lo:.1f}% to {100 * hi:.1f}%"
                if lo is not None and hi is not None
                else "n/a"
            )
            nn = f"{n:.0f}/{big_n:.0f}"
        else:
            v_text = _num(value)
            ci = f"{_num(lo)} to {_num(hi)}" if lo is not None and hi is not None else "n/a"
            nn = f"{_num(n)}/{_num(big_n)}"
        rows.append(
            f"<tr><td>{html.escape(str(r['arm']))}</td><td>{html.escape(str(r['endpoint']))}"
            f'</td><td class="num">{v_text}</td><td class="num">{nn}</td>'
            f'<td class="num">{ci}</td><td>{html.escape(str(r["definition"]))}</td></tr>'
        )
    return (
        '<table>\n<thead><tr><th>Arm</th><th>Endpoint</th><th class="num">Value</th>'
        '<th class="num">n/N</th><th class="num">95% CI</th><th>Definition</th></tr>'
        "</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n"
        '<p class="note">Proportions (value = n/N) with the exact Clopper-Pearson 95% '
        "interval; means with the t interval; n is the number of responders (binary) or "
        "of participants with a value.</p>"
    )


# --------------------------------------------------------------------------- published
def _published_section(published: pd.DataFrame, seeds: list[int] | None = None) -> str:
    if published is None or len(published) == 0:
        return _empty("No published figures for this protocol.")
    rows = []
    for _, r in published.iterrows():
        within = r["within"]
        if pd.isna(within):
            verdict = '<td class="na">n/a</td>'
        elif bool(within):
            verdict = '<td class="within">within</td>'
        else:
            verdict = '<td class="outside">outside</td>'
        lo, hi = _f(r["sim_low"]), _f(r["sim_high"])
        interval = f"{_num(lo)} to {_num(hi)}" if lo is not None and hi is not None else "n/a"
        text = str(r["published_text"]) if not _missing(r["published_text"]) else ""
        rows.append(
            f"<tr><td>{html.escape(str(r['figure']))}</td><td>{html.escape(str(r['arm']))}"
            f'</td><td class="num">{html.escape(text)} ({_num(_f(r["published"]))})</td>'
            f'<td class="num">{_num(_f(r["simulated"]))}</td><td class="num">{interval}</td>'
            f"{verdict}<td>{html.escape(str(r['source']))}</td></tr>"
        )
    n_in = int(published["within"].fillna(False).astype(bool).sum())
    return (
        '<table>\n<thead><tr><th>Figure</th><th>Arm</th><th class="num">Published</th>'
        '<th class="num">Simulated</th><th class="num">Simulated interval</th>'
        "<th>Published value</th><th>Source</th></tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n"
        f'<p class="note">{n_in} of {len(published)} published figures lie within the '
        + (
            f"simulated interval: 2.5-97.5 percentiles over {len(seeds)} seeds "
            f"({', '.join(str(x) for x in seeds)}), simulated value = mean over seeds. "
            if seeds and len(seeds) > 1
            else "simulated interval: the 95% CI of this single run (exact binomial for "
            "proportions, t for means); run with --compare-seeds N for an interval over seeds. "
        )
        + "Proportions as fractions, percentages in %.</p>"
    )


# --------------------------------------------------------------------------- swimmer
def _swimmer_section(
    participants: pd.DataFrame,
    daily: pd.DataFrame,
    events: pd.DataFrame,
    arms: Sequence[str],
    colours: dict[str, str],
) -> str:
    p = participants[_bool(participants["enrolled"])] if len(participants) else participants
    if len(p) == 0:
        return _empty("No participants were enrolled, so there is nothing to plot.")
    order = {a: i for i, a in enumerate(arms)}
    p = p.assign(_o=p["arm"].astype(str).map(order).fillna(len(order)))
    p = p.sort_values(["_o", "participant"], kind="stable")
    ids = p["participant"].astype(str).tolist()
    row_of = {pid: i for i, pid in enumerate(ids)}
    n = len(ids)
    row_h = min(0.3, 45.0 / n)
    height = 1.9 + row_h * n
    fig = _figure((11.0, height), left=0.9, right=1.3, bottom=1.3, top=0.25)
    ax = fig.add_subplot()

    # Follow-up bars.
    last = pd.to_numeric(p["last_followup_day"], errors="coerce").to_numpy(dtype=float)
    d = daily[daily["participant"].astype(str).isin(row_of)] if len(daily) else daily
    if len(d):
        dmax = d.groupby(d["participant"].astype(str))["day"].max()
        fallback = dmax.reindex(ids).to_numpy(dtype=float) + 1.0
        last = np.where(np.isfinite(last), last, fallback)
    last = np.nan_to_num(last, nan=0.0)
    y = np.arange(n, dtype=float)
    ax.barh(y, last, left=0.0, height=0.78, color=_C_FOLLOWUP, edgecolor="0.55", lw=0.6, zorder=1)

    # Insulin use vs insulin free: runs of equal state from the daily diary.
    if len(d):
        dd = (
            pd.DataFrame(
                {
                    "row": d["participant"].astype(str).map(row_of).to_numpy(),
                    "day": pd.to_numeric(d["day"], errors="coerce").to_numpy(dtype=float),
                    "u": pd.to_numeric(d["insulin_u"], errors="coerce").to_numpy(dtype=float),
                }
            )
            .dropna(subset=["day", "u"])
            .sort_values(["row", "day"], kind="stable")
        )
        if len(dd):
            row = dd["row"].to_numpy(dtype=np.int64)
            day = dd["day"].to_numpy(dtype=float)
            state = (dd["u"].to_numpy(dtype=float) > 0).astype(np.int8)
            new = np.ones(row.size, dtype=bool)
            new[1:] = (
                (row[1:] != row[:-1]) | (state[1:] != state[:-1]) | (day[1:] != day[:-1] + 1.0)
            )
            starts = np.flatnonzero(new)
            ends = np.r_[starts[1:], row.size] - 1
            left = day[starts]
            width = day[ends] + 1.0 - left
            colour = np.where(state[starts] == 1, _C_INSULIN, _C_FREE)
            ax.barh(
                row[starts].astype(float),
                width,
                left=left,
                height=0.5,
                color=colour,
                lw=0,
                zorder=2,
            )

    # Event markers.
    handles: list[Any] = [
        Patch(facecolor=_C_FOLLOWUP, edgecolor="0.55", label="follow-up"),
        Patch(facecolor=_C_INSULIN, label="on insulin"),
        Patch(facecolor=_C_FREE, label="insulin free"),
    ]
    ev = events[events["participant"].astype(str).isin(row_of)] if len(events) else events
    if len(ev):
        ev_row = ev["participant"].astype(str).map(row_of).to_numpy(dtype=float)
        ev_day = pd.to_numeric(ev["day"], errors="coerce").to_numpy(dtype=float)
        kind = ev["kind"].astype(str).to_numpy()
        serious = _bool(ev["serious"])
        spec = (
            ("infusion", None, dict(marker="v", s=46, c="#333333", label="infusion")),
            (
                "severe_hypoglycemia",
                None,
                dict(marker="*", s=90, c="#c2185b", label="severe hypoglycaemia"),
            ),
            (
                "adverse_event",
                False,
                dict(
                    marker="o",
                    s=34,
                    facecolors="none",
                    edgecolors="#6a3d9a",
                    linewidths=1.2,
                    label="adverse event",
                ),
            ),
            (
                "adverse_event",
                True,
                dict(marker="o", s=40, c="#6a3d9a", label="serious adverse event"),
            ),
            ("insulin_stop", None, dict(marker=">", s=50, c="#1b7837", label="insulin stop")),
            ("insulin_restart", None, dict(marker="<", s=50, c="#d95f02", label="insulin restart")),
            ("death", None, dict(marker="X", s=90, c="black", label="death")),
        )
        for k, ser, style in spec:
            sel = kind == k
            if ser is not None:
                sel &= serious == ser
            if sel.any():
                handles.append(ax.scatter(ev_day[sel], ev_row[sel], zorder=4, **style))
    else:
        handles.append(Line2D([], [], ls="none", label="(no events)"))

    ax.set_yticks(y)
    ax.set_yticklabels(ids, fontsize=7 if n <= 40 else 5)
    ax.set_ylim(n - 0.5, -0.5)
    arm_of = p["arm"].astype(str).tolist()
    for i, (tick, arm) in enumerate(zip(ax.get_yticklabels(), arm_of, strict=True)):
        tick.set_color(colours.get(arm, "black"))
        if i > 0 and arm != arm_of[i - 1]:
            ax.axhline(i - 0.5, color="0.3", lw=0.8)
    for arm in dict.fromkeys(arm_of):
        first = arm_of.index(arm)
        ax.text(
            1.005,
            1.0 - (first + 0.1) / n,
            arm,
            transform=ax.transAxes,
            fontsize=8,
            va="top",
            ha="left",
            color=colours.get(arm, "black"),
            fontweight="bold",
        )
    ax.axvline(0.0, color="0.35", lw=0.8, ls="--", zorder=3)
    ax.set_xlabel("Study day")
    ax.grid(axis="x", color="0.9", lw=0.6, zorder=0)
    ax.set_axisbelow(True)
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.5 / (height - 1.55)),
        ncol=5,
        fontsize=7.5,
        frameon=False,
    )
    img = _png(fig, "Swimmer plot of follow-up, insulin use and events per participant")
    n_ev = len(ev) if len(ev) else 0
    return (
        img + '\n<p class="note">One row per enrolled participant, grouped by arm. '
        "Grey bar: follow-up from day 0 to the last day followed; inner shading: "
        "exogenous insulin on that day (daily diary) vs insulin free (no insulin that "
        f"day); dashed line: day 0. {n_ev} event(s) marked; serious adverse events "
        "filled, non-serious open.</p>"
    )


# --------------------------------------------------------------------------- trajectories
def _trajectories_section(
    visits: pd.DataFrame, arms: Sequence[str], colours: dict[str, str]
) -> str:
    if len(visits) == 0:
        return _empty("No visits were recorded, so there are no trajectories.")
    fig = _figure((11.0, 6.6), left=0.6, right=0.2, bottom=0.5, top=0.3)
    fig.subplots_adjust(wspace=0.28, hspace=0.42)
    axes = fig.subplots(2, 3).ravel()
    v = visits.assign(
        participant=visits["participant"].astype(str),
        arm=visits["arm"].astype(str),
        day=pd.to_numeric(visits["day"], errors="coerce"),
    )
    for ax, (col, label) in zip(axes, _TRAJECTORIES, strict=False):
        vals = pd.to_numeric(v[col], errors="coerce")
        any_data = False
        for arm in arms:
            sel = (v["arm"] == arm).to_numpy() & np.isfinite(vals.to_numpy(dtype=float))
            if not sel.any():
                continue
            any_data = True
            sub = pd.DataFrame(
                {"p": v["participant"][sel], "day": v["day"][sel], "y": vals[sel]}
            ).sort_values(["p", "day"], kind="stable")
            segs = [g[["day", "y"]].to_numpy(dtype=float) for _, g in sub.groupby("p")]
            c = colours.get(arm, "black")
            ax.add_collection(LineCollection(segs, colors=c, linewidths=0.7, alpha=0.35))
            ax.scatter(sub["day"], sub["y"], s=5, color=c, alpha=0.35, lw=0)
            mean = sub.groupby("day")["y"].mean()
            ax.plot(
                mean.index.to_numpy(dtype=float),
                mean.to_numpy(dtype=float),
                color=c,
                lw=2.2,
                marker="o",
                ms=4,
                label=arm,
            )
        if any_data:
            ax.autoscale_view()
        else:
            ax.text(
                0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.4"
            )
        ax.set_title(label, fontsize=9, loc="left")
        ax.set_xlabel("Study day", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(color="0.92", lw=0.6)
    legend_ax = axes[-1]
    legend_ax.set_axis_off()
    handles = [
        Line2D([], [], color=colours[a], lw=2.2, marker="o", ms=4, label=f"{a} (mean)")
        for a in arms
    ]
    handles.append(Line2D([], [], color="0.4", lw=0.7, alpha=0.6, label="one participant"))
    legend_ax.legend(handles=handles, loc="center", fontsize=8, frameon=False)
    img = _png(fig, "Trajectories of HbA1c, C-peptide, TIR and insulin dose by visit")
    return (
        img + '\n<p class="note">Thin lines: participants (values at the visits where '
        "they were measured); thick lines: arm mean over participants with a value at "
        "that visit. C-peptide from the mixed-meal tolerance test (NaN where no MMTT).</p>"
    )


# --------------------------------------------------------------------------- AGP
def _agp_section(cgm: pd.DataFrame, arms: Sequence[str], visit_days: Sequence[int]) -> str:
    if len(cgm) == 0:
        return _empty("No CGM data were recorded, so there is no ambulatory glucose profile.")
    last_visit = max((d for d in visit_days if d > 0), default=None)
    windows: list[tuple[str, int]] = [("Baseline (days -14 to 0)", 0)]
    if last_visit is not None:
        windows.append(
            (
                f"Last visit, day {last_visit} (days {last_visit - CGM_WINDOW_DAYS}"
                f" to {last_visit})",
                int(last_visit),
            )
        )
    minute = pd.to_numeric(cgm["minute"], errors="coerce").to_numpy(dtype=np.int64)
    glucose = pd.to_numeric(cgm["cgm_mg_dl"], errors="coerce").to_numpy(dtype=float)
    arm_code, arm_names = pd.factorize(cgm["arm"])
    code_of = {str(a): k for k, a in enumerate(arm_names)}
    ok = np.isfinite(glucose)

    frames = []
    summary_rows = []
    keys: dict[tuple[int, str], str] = {}
    for w, (_, end_day) in enumerate(windows):
        hi = end_day * MINUTES_PER_DAY
        lo = hi - CGM_WINDOW_DAYS * MINUTES_PER_DAY
        idx = np.flatnonzero((minute >= lo) & (minute < hi) & ok)
        codes = arm_code[idx]
        for arm in arms:
            key = f"w{w}:{arm}"
            keys[(w, arm)] = key
            rows = idx[codes == code_of[arm]] if arm in code_of else idx[:0]
            if rows.size == 0:
                summary_rows.append((w, arm, 0, 0, None))
                continue
            g = glucose[rows]
            frames.append(
                pd.DataFrame(
                    {
                        "id": pd.Categorical.from_codes(np.zeros(rows.size, dtype=np.int8), [key]),
                        # Whole days after an arbitrary midnight keep the time of day.
                        "time": _EPOCH + pd.to_timedelta(minute[rows] - lo, unit="min"),
                        "glucose": g,
                        "source_row": pd.array(np.zeros(rows.size, dtype=np.int64), dtype="Int64"),
                        "flag": "",
                    }
                )
            )
            n_p = cgm["participant"].iloc[rows].nunique()
            summary_rows.append((w, arm, n_p, g.size, g))
    if not frames:
        return _empty("No CGM readings fall in the baseline or last-visit windows.")
    table = GlucoseTable.from_tidy(pd.concat(frames, ignore_index=True))

    fig = _figure((11.0, 0.4 + 3.1 * len(arms)), left=0.75, right=0.2, bottom=0.35, top=0.3)
    fig.subplots_adjust(wspace=0.12, hspace=0.35)
    axes = np.atleast_2d(fig.subplots(len(arms), len(windows), sharey=True, squeeze=False))
    present = set(table.ids)
    for i, arm in enumerate(arms):
        for w, (wlabel, _) in enumerate(windows):
            ax = axes[i, w]
            key = keys[(w, arm)]
            if key in present:
                plot_agp(table, id=key, ax=ax)
                if ax.get_legend() is not None and (i, w) != (0, 0):
                    ax.get_legend().remove()
                if w > 0:
                    ax.set_ylabel("")
                    ax.tick_params(labelleft=False)
            else:
                ax.set_axis_off()
                ax.text(
                    0.5,
                    0.5,
                    "no CGM readings in this window",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="0.4",
                )
            ax.set_title(f"{arm} - {wlabel}", fontsize=9, loc="left")
    img = _png(fig, "Ambulatory glucose profile per arm at baseline and at the last visit")

    body = []
    for w, arm, n_p, n_r, g in summary_rows:
        cells = [html.escape(arm), html.escape(windows[w][0]), str(n_p), str(n_r)]
        if g is None:
            cells += ["&ndash;"] * 6
        else:
            mean = float(g.mean())
            cv = 100.0 * float(g.std(ddof=1)) / mean if g.size > 1 and mean > 0 else math.nan
            cells += [
                f"{mean:.0f}",
                f"{100 * np.mean((g >= LOW_MGDL) & (g <= HIGH_MGDL)):.1f}",
                f"{100 * np.mean(g < LOW_MGDL):.1f}",
                f"{100 * np.mean(g < VERY_LOW_MGDL):.1f}",
                f"{100 * np.mean(g > HIGH_MGDL):.1f}",
                _num(cv),
            ]
        body.append(
            "<tr>"
            + "".join(
                f'<td class="num">{c}</td>' if k >= 2 else f"<td>{c}</td>"
                for k, c in enumerate(cells)
            )
            + "</tr>"
        )
    head = (
        '<tr><th>Arm</th><th>Window</th><th class="num">Participants</th>'
        '<th class="num">Readings</th><th class="num">Mean, mg/dL</th>'
        '<th class="num">TIR 70-180, %</th><th class="num">TBR &lt;70, %</th>'
        '<th class="num">TBR &lt;54, %</th><th class="num">TAR &gt;180, %</th>'
        '<th class="num">CV, %</th></tr>'
    )
    return (
        img
        + f"\n<table>\n<thead>{head}</thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody>\n</table>\n"
        f'<p class="note">CGM readings of all participants of an arm in the '
        f"{CGM_WINDOW_DAYS} days before the visit, pooled; bands are the 5th-95th and "
        "25th-75th percentiles and the median in 15-minute bins of the modal day "
        "(Johnson ML et al. Diabetes Technol Ther 2019;21(S2):S217-S225). Target range "
        "70-180 mg/dL, 54 and 250 mg/dL dashed (Battelino T et al. Diabetes Care "
        "2019;42:1593-1603). Metrics in the table pooled over readings.</p>"
    )


# --------------------------------------------------------------------------- adverse events
def _adverse_events_section(
    participants: pd.DataFrame, events: pd.DataFrame, arms: Sequence[str]
) -> str:
    enrolled = participants[_bool(participants["enrolled"])] if len(participants) else participants
    n_arm = {a: int((enrolled["arm"].astype(str) == a).sum()) for a in arms}
    ae = events[events["kind"].astype(str) == "adverse_event"] if len(events) else events
    parts = []
    if len(ae) == 0:
        parts.append(_empty("No adverse events were recorded in any arm."))
    else:
        ae = ae.assign(
            arm=ae["arm"].astype(str),
            participant=ae["participant"].astype(str),
            term=ae["term"].fillna("").astype(str).replace("", "(no term)"),
            _serious=_bool(ae["serious"]),
            _g3=pd.to_numeric(ae["grade"], errors="coerce").to_numpy(dtype=float) >= 3,
            _rel=~ae["related"].fillna("").astype(str).str.strip().str.lower().isin(_NOT_RELATED),
        )
        terms = (
            ae.groupby("term")["participant"].nunique().sort_values(ascending=False, kind="stable")
        )
        head1 = "".join(
            f'<th colspan="5" class="grp">{html.escape(a)} (N={n_arm[a]})</th>' for a in arms
        )
        head2 = "".join(
            '<th class="num">Participants ≥1, n (%)</th><th class="num">Events'
            '</th><th class="num">Serious</th><th class="num">Grade ≥3</th>'
            '<th class="num">Related</th>'
            for _ in arms
        )
        rows = [_ae_row("Any adverse event", ae, arms, n_arm, bold=True)]
        rows += [_ae_row(t, ae[ae["term"] == t], arms, n_arm) for t in terms.index]
        parts.append(
            f'<table>\n<thead><tr><th rowspan="2">Term</th>{head1}</tr>\n'
            f"<tr>{head2}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
        )
    for a in arms:
        if len(ae) and n_arm[a] and not (ae["arm"] == a).any():
            parts.append(f'<p class="empty">No adverse events in arm {html.escape(a)}.</p>')
    parts.append(
        '<p class="note">Adverse events (event kind <code>adverse_event</code>) by '
        "term and arm; percentages of the participants enrolled in the arm. Serious "
        "as flagged; grade by CTCAE; related: any relatedness other than "
        "&quot;unrelated&quot; (cells, immunosuppression, procedure). CONSORT 2010 "
        "item 19 (harms).</p>"
    )

    sh = events[events["kind"].astype(str) == "severe_hypoglycemia"] if len(events) else events
    deaths = events[events["kind"].astype(str) == "death"] if len(events) else events
    rows = []
    for a in arms:
        s = sh[sh["arm"].astype(str) == a] if len(sh) else sh
        dth = deaths[deaths["arm"].astype(str) == a] if len(deaths) else deaths
        n_p = s["participant"].nunique() if len(s) else 0
        pct = f" ({100 * n_p / n_arm[a]:.0f}%)" if n_arm[a] else ""
        rows.append(
            f'<tr><td>{html.escape(a)}</td><td class="num">{n_arm[a]}</td>'
            f'<td class="num">{n_p}{pct}</td><td class="num">{len(s)}</td>'
            f'<td class="num">{len(dth)}</td></tr>'
        )
    parts.append(
        "<h3>Severe hypoglycaemia and deaths</h3>\n<table>\n<thead><tr><th>Arm</th>"
        '<th class="num">Enrolled</th><th class="num">Participants with severe '
        'hypoglycaemia, n (%)</th><th class="num">Severe hypoglycaemic events</th>'
        '<th class="num">Deaths</th></tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )
    return "\n".join(parts)


def _ae_row(
    label: str, ae: pd.DataFrame, arms: Sequence[str], n_arm: dict[str, int], bold: bool = False
) -> str:
    cells = []
    for a in arms:
        s = ae[ae["arm"] == a]
        n_p = s["participant"].nunique()
        pct = f" ({100 * n_p / n_arm[a]:.0f}%)" if n_arm[a] else ""
        cells += [
            f"{n_p}{pct}",
            str(len(s)),
            str(int(s["_serious"].sum())),
            str(int(s["_g3"].sum())),
            str(int(s["_rel"].sum())),
        ]
    lab = f"<b>{html.escape(label)}</b>" if bold else html.escape(label)
    return f"<tr><td>{lab}</td>" + "".join(f'<td class="num">{c}</td>' for c in cells) + "</tr>"


# --------------------------------------------------------------------------- helpers
def _png(fig: Figure, alt: str) -> str:
    """Encode ``fig`` as an ``<img>`` with a base64 PNG data URI and release it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    fig.clear()
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _figure(
    size: tuple[float, float], *, left: float, right: float, bottom: float, top: float
) -> Figure:
    """An Agg figure with fixed margins in inches (cheaper than constrained layout)."""
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    w, h = size
    fig.subplots_adjust(left=left / w, right=1.0 - right / w, bottom=bottom / h, top=1.0 - top / h)
    return fig


def _arm_colours(arms: Sequence[str]) -> dict[str, str]:
    return {a: _ARM_COLOURS[i % len(_ARM_COLOURS)] for i, a in enumerate(arms)}


def _bool(values: pd.Series) -> np.ndarray:
    return values.fillna(False).astype(bool).to_numpy()


def _empty(text: str) -> str:
    return f'<p class="empty">{html.escape(text)}</p>'


_f = _as_float  # one definition of "a finite float or None" (report.agp)


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _num(value: float | None) -> str:
    """A number with about three significant digits (``n/a`` when missing)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e6:
        return f"{value:.0f}"
    a = abs(value)
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


__all__ = ["DPI", "TrialResultLike", "render_trial_report", "write_trial_report"]
