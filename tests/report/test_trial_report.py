"""Tests of the HTML report of a virtual trial (:mod:`isletsim.report.trial`).

A synthetic, TrialResult-like object fills every table in the layout of
:mod:`isletsim.trial.tables`; the report is checked as text and, when headless Chromium is
installed (``/usr/bin/chromium``, Debian packages ``chromium`` and ``chromium-driver``),
rendered in a real browser driven by Playwright for Python.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from isletsim.report.trial import write_trial_report
from isletsim.trial.tables import conform, empty

SECTION_IDS = (
    "consort",
    "baseline",
    "endpoints",
    "published",
    "swimmer",
    "trajectories",
    "agp",
    "adverse-events",
)
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARMS = ("islet", "standard care")


@dataclass
class FakeTrialResult:
    """The duck-typed interface of ``isletsim.trial.result.TrialResult``."""

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
    published: pd.DataFrame = field(default_factory=lambda: empty("published"))

    def compare_published(self) -> pd.DataFrame:
        return self.published


def make_result(
    n_per_arm: int = 2,
    *,
    run_in_days: int = 14,
    followup_days: int = 120,
    visit_days: tuple[int, ...] = (0, 30, 90, 120),
    seed: int = 7,
    with_published: bool = True,
) -> FakeTrialResult:
    """A plausible synthetic trial: an islet arm and a standard-care arm."""
    rng = np.random.default_rng(seed)
    arms = list(ARMS)
    n = 2 * n_per_arm
    ids = [f"P{i + 1:03d}" for i in range(n)]
    arm_of = [arms[i % 2] for i in range(n)]
    islet = np.array([a == "islet" for a in arm_of])
    therapies = np.array(["mdi", "pump", "aid"])

    # Participants: the enrolled ones, two screen failures, one eligible over capacity.
    death_day = np.full(n, np.nan)
    completed = np.ones(n, dtype=bool)
    last = np.full(n, float(followup_days))
    if n >= 4:  # one standard-care participant dies, one islet participant withdraws
        death_day[1] = 0.6 * followup_days
        completed[1] = False
        last[1] = death_day[1]
        completed[2] = False
        last[2] = 0.8 * followup_days
    enrolled = pd.DataFrame(
        {
            "participant": ids,
            "arm": arm_of,
            "eligible": True,
            "screen_failure": "",
            "enrolled": True,
            "dosed": islet,
            "completed": completed,
            "last_followup_day": last,
            "death_day": death_day,
            "model_patient": [f"adult#{i % 10 + 1:03d}" for i in range(n)],
            "age_years": rng.normal(45, 10, n).round(1),
            "sex": rng.choice(["F", "M"], n),
            "body_weight_kg": rng.normal(72, 10, n).round(1),
            "diabetes_duration_years": rng.normal(28, 8, n).round(1),
            "gold_score": rng.integers(4, 8, n).astype(float),
            "severe_events_prior_year": rng.integers(1, 6, n),
            "therapy": therapies[np.arange(n) % 3],
            "dose": np.where(islet, 5000.0, 0.0),
            "dose_unit": np.where(islet, "IEQ/kg", ""),
            "baseline_hba1c_pct": rng.normal(7.6, 0.6, n).round(2),
            "baseline_tir_pct": rng.normal(52, 8, n).round(1),
            "baseline_insulin_u_per_day": rng.normal(38, 6, n).round(1),
        }
    )
    others = enrolled.iloc[:3].copy()
    others["participant"] = ["S001", "S002", "S003"]
    others["arm"] = ""
    others["eligible"] = [False, False, True]
    others["screen_failure"] = ["gold_score < 4; no severe hypoglycaemia", "age > 65", ""]
    others[["enrolled", "dosed", "completed"]] = False
    others["last_followup_day"] = np.nan
    participants = conform("participants", pd.concat([enrolled, others], ignore_index=True))

    # Daily diary: islet participants become insulin free, two of them restart.
    days = np.arange(-run_in_days, followup_days)
    free_from = np.where(islet, 40 + 10 * np.arange(n), 10**9)
    restart = np.where(islet & (np.arange(n) % 4 == 0), 0.7 * followup_days, 10**9)
    pd_day = np.repeat(days[None, :], n, axis=0)
    insulin = np.repeat(rng.normal(38, 4, n)[:, None], days.size, axis=1)
    free = (pd_day >= free_from[:, None]) & (pd_day < restart[:, None])
    insulin = np.where(free, 0.0, np.where(islet[:, None] & (pd_day >= 0), 0.4, 1.0) * insulin)
    followed = pd_day < last[:, None]
    daily = pd.DataFrame(
        {
            "participant": np.repeat(ids, days.size)[followed.ravel()],
            "arm": np.repeat(arm_of, days.size)[followed.ravel()],
            "day": pd_day.ravel()[followed.ravel()],
            "mean_glucose_mg_dl": rng.normal(150, 20, n * days.size)[followed.ravel()],
            "insulin_u": insulin.ravel()[followed.ravel()],
            "graft_fraction": np.where(islet[:, None] & (pd_day >= 0), 0.3, 0.0).ravel()[
                followed.ravel()
            ],
        }
    )

    # CGM every 5 minutes; better control in the islet arm after day 0.
    minutes = np.arange(-run_in_days * 1440, followup_days * 1440, 5)
    tod = (minutes % 1440) / 60.0
    cgm_frames = []
    for i in range(n):
        keep = minutes < last[i] * 1440
        m = minutes[keep]
        good = islet[i] & (m >= 0)
        mean = np.where(good, 120.0, 165.0)
        amp = np.where(good, 25.0, 60.0)
        g = mean + amp * np.sin(2 * np.pi * (tod[keep] - 9.0) / 24.0)
        g = np.clip(g + rng.normal(0, 25, m.size), 40.0, 400.0)
        cgm_frames.append(
            pd.DataFrame({"participant": ids[i], "arm": arm_of[i], "minute": m, "cgm_mg_dl": g})
        )
    cgm = conform("cgm", pd.concat(cgm_frames, ignore_index=True))

    # Visits.
    rows = []
    for i in range(n):
        for d in visit_days:
            if d > last[i]:
                continue
            on = islet[i] and d > 0
            rows.append(
                {
                    "participant": ids[i],
                    "arm": arm_of[i],
                    "day": d,
                    "hba1c_pct": np.nan if d == 30 else rng.normal(6.0 if on else 7.5, 0.4),
                    "mean_glucose_mg_dl": rng.normal(125 if on else 165, 10),
                    "tir_pct": rng.normal(85 if on else 52, 6),
                    "tbr_54_pct": abs(rng.normal(0.3, 0.2)),
                    "tbr_70_pct": abs(rng.normal(2.0, 1.0)),
                    "tar_180_pct": abs(rng.normal(10 if on else 40, 5)),
                    "cv_pct": rng.normal(25 if on else 38, 3),
                    "insulin_u_per_day": 0.0
                    if on and free[i, d + run_in_days - 1]
                    else rng.normal(38, 4),
                    "insulin_independent": bool(on and free[i, d + run_in_days - 1]),
                    "cpeptide_fasting_pmol_l": rng.normal(300, 60) if on else np.nan,
                    "cpeptide_mmtt_peak_pmol_l": rng.normal(900, 150) if on else np.nan,
                    "graft_fraction": 0.3 if on else 0.0,
                }
            )
    visits = conform("visits", pd.DataFrame(rows))

    # Events.
    ev = []

    def add(
        i: int,
        day: float,
        kind: str,
        term: str,
        grade: float = np.nan,
        serious: bool = False,
        related: str = "",
        detail: str = "",
    ) -> None:
        ev.append(
            {
                "participant": ids[i],
                "arm": arm_of[i],
                "day": day,
                "kind": kind,
                "term": term,
                "grade": grade,
                "serious": serious,
                "related": related,
                "detail": detail,
            }
        )

    for i in range(n):
        if islet[i]:
            add(i, 0.0, "infusion", "islet_infusion", detail="5000 IEQ/kg")
            add(i, 3.0, "adverse_event", "neutropenia", 2, False, "immunosuppression")
            add(i, 0.2, "adverse_event", "intraperitoneal bleeding", 3, True, "procedure")
            add(i, float(free_from[i]), "insulin_stop", "insulin_stop", detail="weaning rule")
            if restart[i] < followup_days:
                add(
                    i,
                    float(restart[i]),
                    "insulin_restart",
                    "insulin_restart",
                    detail="HbA1c > 6.5 %",
                )
        else:
            add(i, -5.5, "severe_hypoglycemia", "severe_hypoglycemia", detail="nadir 38 mg/dL")
            add(i, 20.25, "severe_hypoglycemia", "severe_hypoglycemia", detail="nadir 42 mg/dL")
            add(i, 50.0, "adverse_event", "ketoacidosis", 3, True, "unrelated")
        if np.isfinite(death_day[i]):
            add(i, float(death_day[i]), "death", "death", 5, True, "unrelated")
    events = conform("events", pd.DataFrame(ev))

    # Endpoints: a binary and a continuous one per arm.
    ep = []
    for a in arms:
        sel = visits[(visits["arm"] == a) & (visits["day"] == max(visit_days))]
        k = int(sel["insulin_independent"].sum())
        big_n = len(sel)
        p = k / big_n if big_n else np.nan
        ep.append(
            {
                "arm": a,
                "endpoint": f"insulin independent at day {max(visit_days)}",
                "value": p,
                "n": float(k),
                "N": big_n,
                "ci_low": max(p - 0.4, 0.0),
                "ci_high": min(p + 0.4, 1.0),
                "definition": "no insulin on every diary day (Clopper-Pearson)",
            }
        )
        hb = sel["hba1c_pct"].dropna()
        ep.append(
            {
                "arm": a,
                "endpoint": "HbA1c at last visit, %",
                "value": hb.mean(),
                "n": float(len(hb)),
                "N": big_n,
                "ci_low": hb.mean() - 0.5,
                "ci_high": hb.mean() + 0.5,
                "definition": "mean HbA1c (t interval)",
            }
        )
    endpoints = conform("endpoints", pd.DataFrame(ep))

    published = empty("published")
    if with_published:
        published = conform(
            "published",
            pd.DataFrame(
                {
                    "figure": ["insulin independent at day 365", "HbA1c < 7 % at day 365"],
                    "arm": ["islet", "islet"],
                    "published": [0.52, 0.875],
                    "published_text": ["25/48", "87.5 %"],
                    "simulated": [0.5, 0.6],
                    "sim_low": [0.1, 0.2],
                    "sim_high": [0.9, 0.7],
                    "within": [True, False],
                    "source": [
                        "Hering BJ et al. Diabetes Care 2016;39:1230",
                        "Hering BJ et al. Diabetes Care 2016;39:1230",
                    ],
                }
            ),
        )
    return FakeTrialResult(
        protocol_name="cit-07",
        protocol_title="Synthetic islet transplantation trial <test>",
        seed=seed,
        arms=arms,
        visit_days=list(visit_days),
        participants=participants,
        visits=visits,
        events=events,
        daily=conform("daily", daily),
        cgm=cgm,
        endpoints=endpoints,
        published=published,
    )


def empty_result() -> FakeTrialResult:
    return FakeTrialResult(
        protocol_name="empty",
        protocol_title="Nothing happened",
        seed=1,
        arms=list(ARMS),
        visit_days=[0, 365],
        participants=empty("participants"),
        visits=empty("visits"),
        events=empty("events"),
        daily=empty("daily"),
        cgm=empty("cgm"),
        endpoints=empty("endpoints"),
    )


def _section(page: str, sid: str) -> str:
    m = re.search(rf'<section id="{re.escape(sid)}">(.*?)</section>', page, flags=re.S)
    assert m is not None, f"section {sid!r} missing"
    return m.group(1)


EXTERNAL = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.fixture(scope="module")
def small_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[FakeTrialResult, Path]:
    """The synthetic 2-arm, 4-participant result and its report (written once)."""
    result = make_result()
    out = tmp_path_factory.mktemp("trial_report") / "out"
    return result, write_trial_report(result, out)


# --------------------------------------------------------------------------- text checks
def test_report_has_every_section_and_no_external_resources(
    small_report: tuple[FakeTrialResult, Path],
) -> None:
    result, path = small_report
    assert path.name == "report.html"
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]  # no temp left
    page = path.read_text(encoding="utf-8")
    for sid in SECTION_IDS:
        assert "<h2>" in _section(page, sid)
    assert not EXTERNAL.search(page)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    assert "isletsim run cit-07 --seed 7 --out DIR" in page
    assert "&lt;test&gt;" in page  # data text is escaped
    assert page.count('src="data:image/png;base64,') == 3  # swimmer, trajectories, AGP
    consort = _section(page, "consort")
    assert "age &gt; 65: 1" in consort and "gold_score &lt; 4: 1" in consort
    assert "No infusion in this arm (standard care)" in consort
    published = _section(page, "published")
    assert 'class="within"' in published and 'class="outside"' in published
    ae = _section(page, "adverse-events")
    assert "intraperitoneal bleeding" in ae and "neutropenia" in ae
    assert "Baseline HbA1c" in _section(page, "baseline")
    endpoints = _section(page, "endpoints")
    for _, row in result.endpoints.iterrows():  # binary endpoints as % with n/N
        if row["endpoint"].startswith("insulin independent"):
            assert f"{100 * row['value']:.1f}%" in endpoints
            assert f"{row['n']:.0f}/{row['N']}" in endpoints


def test_report_without_published_figures_says_so(tmp_path: Path) -> None:
    page = write_trial_report(make_result(with_published=False), tmp_path).read_text()
    assert "No published figures for this protocol." in _section(page, "published")


def test_empty_result_renders_every_section_with_a_sentence(tmp_path: Path) -> None:
    page = write_trial_report(empty_result(), tmp_path).read_text()
    for sid in SECTION_IDS:
        body = _section(page, sid)
        assert "<h2>" in body
        assert 'class="empty"' in body, sid
    assert "<img" not in page


def test_rewrite_replaces_report_atomically(tmp_path: Path) -> None:
    first = write_trial_report(empty_result(), tmp_path)
    second = write_trial_report(make_result(with_published=False), tmp_path)
    assert first == second
    assert "Synthetic islet" in second.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


# --------------------------------------------------------------------------- browser
def _playwright_or_skip():
    ci = bool(os.environ.get("CI"))
    if not CHROMIUM.exists():
        msg = (
            f"headless browser test needs {CHROMIUM} (Debian packages chromium and "
            "chromium-driver: apt-get install -y chromium chromium-driver)"
        )
        if ci:
            pytest.fail(f"CI is set but {msg}")
        pytest.skip(f"{msg}; it fails instead of skipping when CI is set")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        if ci:
            pytest.fail(f"CI is set but Playwright for Python is not installed: {exc}")
        pytest.skip(f"Playwright for Python is not installed (pip install '.[test]'): {exc}")
    return sync_playwright


def test_report_renders_in_headless_chromium(
    small_report: tuple[FakeTrialResult, Path], tmp_path: Path
) -> None:
    sync_playwright = _playwright_or_skip()
    _, path = small_report
    console_errors: list[str] = []
    page_errors: list[str] = []
    foreign: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on(
                "console", lambda m: console_errors.append(m.text) if m.type == "error" else None
            )
            page.on("pageerror", lambda e: page_errors.append(str(e)))

            def guard(route) -> None:
                url = route.request.url
                if url.startswith(("file:", "data:")):
                    route.continue_()
                else:
                    foreign.append(url)
                    route.abort()

            page.route("**/*", guard)
            page.goto(path.as_uri(), wait_until="load")
            for sid in SECTION_IDS:
                section = page.locator(f"section#{sid}")
                assert section.count() == 1, sid
                assert section.is_visible(), sid
                assert section.locator("h2").is_visible(), sid
            images = page.evaluate(
                "() => Array.from(document.images).map(i => [i.complete, i.naturalWidth])"
            )
            assert len(images) == 3
            assert all(done and width > 0 for done, width in images), images
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert console_errors == []
    assert page_errors == []
    assert foreign == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


# --------------------------------------------------------------------------- speed
@pytest.mark.slow
def test_full_size_report_is_fast(tmp_path: Path) -> None:
    """14 participants x 393 days of 5-min CGM (about 1.6 M rows) in under 5 s."""
    result = make_result(
        7, run_in_days=28, followup_days=365, visit_days=(0, 30, 90, 180, 270, 365)
    )
    assert len(result.cgm) > 1_500_000
    start = time.perf_counter()
    write_trial_report(result, tmp_path)
    assert time.perf_counter() - start < 5.0
