"""Calibrate the severe-hypoglycaemia hazard of :mod:`isletsim.therapy.hypoglycemia`.

Targets (``target_rate_impaired``, ``target_rate_aware`` in
``src/isletsim/params/hypoglycemia/self_care.toml``): 2.8 severe events per person-year with
impaired awareness and 0.5 with intact awareness (Gold AE et al. *Diabetes Care*
1994;17:697 [V], isletsim science reference 6.4).

Cohorts: the standard-care population of the ``care`` validation suite
(:func:`isletsim.validation.care_suite.care_population`, drawn by
:func:`isletsim.population.sample_population`): the *impaired* cohort is selected as in the
trial (age 18-65, Gold >= 4, >= 2 severe events in the prior year), the *intact* cohort is
adults 18-65 with Gold <= 3, not selected on events. Each cohort is half on
:class:`~isletsim.therapy.regimens.PumpTherapy` and half on
:class:`~isletsim.therapy.regimens.MultipleDailyInjections`, both with the
:class:`~isletsim.therapy.regimens.BolusBehaviour` of ``regimens.toml`` (carb-counting error,
missed and late boluses) and each participant's mis-set settings, with random meals
(:mod:`isletsim.scenarios`), wrapped in
:class:`~isletsim.therapy.hypoglycemia.HypoglycemiaSelfCare` with each participant's Gold
score. The calibration seed differs from the suite's (2026) so the suite checks the fit on
new participants.

Method.

1. *Exposure run* (hazard off, ``h0 = 0``; self-treatment on). For every participant the
   time is cut into *windows* that end when the true glucose returns to ``rearm_mg_dl``
   (one event per window at most, as in the model). For a grid of ``kappa`` the script
   accumulates ``I(kappa) = sum over control steps below 54 of exp(kappa (54 - BG)) * P``
   per window; a window then has an event with probability ``1 - exp(-h0 r I(kappa))``.
2. *Fit.* For each ``kappa``: ``h0`` from the aware target (``r = 1``), then the factor
   ``r`` that meets the impaired target. ``kappa`` is chosen where ``r(kappa)`` equals the
   file's ``r_iah`` (so ``h0`` and ``kappa`` are fitted, ``r_iah`` kept); when no ``kappa``
   of the grid gets there, ``kappa`` stays at the file's value and ``r_iah`` is fitted too.
3. *Check run* with the fitted values and the hazard on (events are then treated, which
   changes later glucose): achieved rates with exact Poisson 95 % intervals and their
   relative error against the targets.

The fitted values are written into the TOML (``value`` and ``note`` of ``h0_per_min``,
``kappa_per_mg_dl`` and, if fitted, ``r_iah``) and the fit is written into the README
between the calibration markers. ``--dry-run`` prints without writing.

Run: ``.venv/bin/python tools/calibrate_severe_hypo.py`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import chi2

import isletsim as isl
from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy
from isletsim.therapy.hypoglycemia import HypoglycemiaParameters, HypoglycemiaSelfCare
from isletsim.therapy.regimens import BolusBehaviour, MultipleDailyInjections, PumpTherapy
from isletsim.validation.care_suite import CareConfig, arm_meals, care_population

ROOT = Path(__file__).resolve().parents[1]
TOML = ROOT / "src/isletsim/params/hypoglycemia/self_care.toml"
README = ROOT / "src/isletsim/params/hypoglycemia/README.md"
BEGIN, END = "<!-- calibration:begin -->", "<!-- calibration:end -->"
KAPPAS = np.round(np.arange(0.0, 0.3001, 0.01), 4)
DAYS_PER_YEAR = 365.25


# ------------------------------------------------------------------------------ exposure
class _Probe(Therapy):
    """Wraps the self-care policy and integrates exp(kappa (54 - BG)) over rearm windows."""

    def __init__(self, inner: HypoglycemiaSelfCare) -> None:
        self.inner = inner
        self.control_period_min = inner.control_period_min
        self.windows: list[np.ndarray] = []  # (K, m) integrals of closed windows
        self.open: list[_BoundProbe] = []

    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        bound = _BoundProbe(self, self.inner.bind(patients), len(patients))
        self.open.append(bound)
        return bound

    def all_windows(self) -> np.ndarray:
        """Integrals of every window, closed or still open at the end, (K, windows)."""
        parts = [*self.windows, *(b.acc[:, b.acc[0] > 0] for b in self.open)]
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(KAPPAS), 0))


class _BoundProbe(BoundTherapy):
    def __init__(self, probe: _Probe, inner: BoundTherapy, n: int) -> None:
        self.probe = probe
        self.inner = inner
        self.control_period_min = probe.control_period_min
        self.par = probe.inner.parameters
        self.acc = np.zeros((len(KAPPAS), n))

    def decide(self, obs: Observation) -> InsulinAction:
        bg = np.asarray(obs.glucose_plasma_mg_dl, dtype=float)
        p = self.par
        close = (bg >= p.rearm_mg_dl) & (self.acc[0] > 0)
        if close.any():
            self.probe.windows.append(self.acc[:, close].copy())
            self.acc[:, close] = 0.0
        below = bg < p.severe_below_mg_dl
        depth = np.where(below, p.severe_below_mg_dl - bg, 0.0)
        self.acc += below * np.exp(KAPPAS[:, None] * depth[None, :]) * self.control_period_min
        return self.inner.decide(obs)


# ------------------------------------------------------------------------------ cohorts
def cohorts(participants: int, days: int, seed: int) -> dict[str, list[tuple]]:
    """Impaired and intact cohorts: (rows, meals, therapy factory) for the pump and MDI halves."""
    config = CareConfig(participants=participants, days=days, seed=seed)
    iah, intact = care_population(participants, seed)
    out: dict[str, list[tuple]] = {}
    for aw, rows in (("impaired", iah), ("intact", intact)):
        halves = []
        for part, factory in ((rows.iloc[0::2], PumpTherapy),
                              (rows.iloc[1::2], MultipleDailyInjections)):  # fmt: skip
            halves.append((part, arm_meals(len(part), config), factory))
        out[aw] = halves
    return out


def run(
    halves: list[tuple], days: int, par: HypoglycemiaParameters, seed: int, probe: bool,
) -> tuple[list[HypoglycemiaSelfCare], list[_Probe]]:  # fmt: skip
    """Simulate one cohort (both halves); with ``probe`` the hazard integrals are collected."""
    policies, probes = [], []
    for rows, meals, factory in halves:
        therapy = factory(behaviour=BolusBehaviour.from_parameters(seed=seed))
        policy = HypoglycemiaSelfCare(therapy, awareness="sample", seed=seed, parameters=par)
        wrapper = _Probe(policy) if probe else None
        sensitivity = isl.InsulinSensitivity(len(rows), days, seed=seed)
        isl.simulate(rows, days, meals, wrapper or policy, record=False,
                     insulin_sensitivity=sensitivity)  # fmt: skip
        policies.append(policy)
        if wrapper is not None:
            probes.append(wrapper)
    return policies, probes


# ------------------------------------------------------------------------------ fit
def expected_rate(windows: np.ndarray, k: int, h0r: float, person_years: float) -> float:
    """Expected events per person-year for hazard scale ``h0 r`` at kappa index ``k``."""
    return float(-np.expm1(-h0r * windows[k]).sum() / person_years)


def solve_scale(windows: np.ndarray, k: int, target: float, person_years: float) -> float:
    """``h0 r`` that gives ``target`` events per person-year (nan if unreachable)."""
    top = windows[k].size / person_years  # every window has an event
    if windows[k].size == 0 or target >= top:
        return float("nan")
    f = lambda s: expected_rate(windows, k, s, person_years) - target  # noqa: E731
    hi = 1e-6
    while f(hi) < 0:
        hi *= 10.0
    log_scale = brentq(lambda ls: f(np.exp(ls)), np.log(hi) - 30.0, np.log(hi), xtol=1e-10)
    return float(np.exp(log_scale))


def fit(
    w_imp: np.ndarray, w_aw: np.ndarray, py: float, par: HypoglycemiaParameters
) -> dict[str, float | bool]:
    """Fit ``h0`` and ``kappa`` (and ``r_iah`` if needed) to the two targets."""
    h0 = np.array([solve_scale(w_aw, k, par.target_rate_aware, py) for k in range(len(KAPPAS))])
    h0r = np.array(
        [solve_scale(w_imp, k, par.target_rate_impaired, py) for k in range(len(KAPPAS))]
    )
    r = h0r / h0
    ok = np.isfinite(r)
    diff = r - par.r_iah
    cross = np.flatnonzero(ok[:-1] & ok[1:] & (np.sign(diff[:-1]) != np.sign(diff[1:])))
    if cross.size:
        k = int(cross[0])
        a = diff[k] / (diff[k] - diff[k + 1])
        kappa = float(KAPPAS[k] + a * (KAPPAS[k + 1] - KAPPAS[k]))
        lh0 = float(np.interp(kappa, KAPPAS[k : k + 2], np.log(h0[k : k + 2])))
        return {"h0": float(np.exp(lh0)), "kappa": kappa, "r_iah": par.r_iah,
                "r_fitted": False, "r_curve": r}  # fmt: skip
    k = int(np.argmin(np.abs(KAPPAS - par.kappa_per_mg_dl)))
    return {"h0": float(h0[k]), "kappa": float(KAPPAS[k]), "r_iah": float(max(r[k], 1.0)),
            "r_fitted": True, "r_curve": r}  # fmt: skip


def poisson_ci(count: int, exposure: float) -> tuple[float, float]:
    """Exact (Garwood) 95 % interval of a Poisson rate."""
    lo = chi2.ppf(0.025, 2 * count) / 2 if count > 0 else 0.0
    hi = chi2.ppf(0.975, 2 * count + 2) / 2
    return lo / exposure, hi / exposure


# ------------------------------------------------------------------------------ writing
def set_entry(text: str, name: str, value: float, note: str) -> str:
    """Replace ``value`` and ``note`` of table ``[name]`` in TOML text."""
    pattern = re.compile(rf"(\[{name}\]\n)(.*?)(?=\n\[|\Z)", re.S)
    match = pattern.search(text)
    if match is None:
        raise KeyError(f"{TOML}: no table [{name}]")
    body = re.sub(r"(?m)^value = .*$", f"value = {value:.6g}", match.group(2))
    body = re.sub(r"(?m)^note = .*$", f"note = {_toml_str(note)}", body)
    return text[: match.start(2)] + body + text[match.end(2) :]


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=160, help="participants per cohort")
    ap.add_argument("--days", type=int, default=90, help="simulated days per participant")
    ap.add_argument("--seed", type=int, default=2027, help="not the care suite's seed (2026)")
    ap.add_argument("--dry-run", action="store_true", help="print, write nothing")
    args = ap.parse_args(argv)
    t0 = time.time()
    base = HypoglycemiaParameters.packaged()
    groups = cohorts(args.participants, args.days, args.seed)
    n_rows = args.participants
    py = n_rows * args.days / DAYS_PER_YEAR
    off = dataclasses.replace(base, h0_per_min=0.0)
    exposure = {}
    for aw in ("impaired", "intact"):
        pols, probes = run(groups[aw], args.days, off, args.seed, probe=True)
        windows = np.concatenate([p.all_windows() for p in probes], axis=1)
        parts = pd.concat([p.participants for p in pols])
        exposure[aw] = (windows, parts)
        print(f"exposure run {aw}: {windows.shape[1]} windows below 54, "
              f"{parts['minutes_below_54'].sum() / (n_rows * args.days):.2f} "
              f"min/day below 54 ({time.time() - t0:.0f} s)")  # fmt: skip
    res = fit(exposure["impaired"][0], exposure["intact"][0], py, base)
    print(f"fit: h0 = {res['h0']:.4g}/min, kappa = {res['kappa']:.4g}/(mg/dL), "
          f"r_iah = {res['r_iah']:.3g} ({'fitted' if res['r_fitted'] else 'fixed'})")  # fmt: skip
    print("r needed by kappa:", {float(k): round(float(v), 2) for k, v in
                                 zip(KAPPAS[::5], res["r_curve"][::5], strict=True)})  # fmt: skip
    fitted = dataclasses.replace(
        base, h0_per_min=float(f"{res['h0']:.6g}"), kappa_per_mg_dl=float(f"{res['kappa']:.6g}"),
        r_iah=float(f"{res['r_iah']:.6g}"),
    )  # fmt: skip
    lines = []
    for aw, target in (("impaired", base.target_rate_impaired), ("intact", base.target_rate_aware)):
        pols, _ = run(groups[aw], args.days, fitted, args.seed + 1, probe=False)
        count = sum(len(p.events) for p in pols)
        rate = count / py
        lo, hi = poisson_ci(count, py)
        parts = pd.concat([p.participants for p in pols])
        below = parts["minutes_below_54"].sum() / parts["minutes_observed"].sum() * 100
        lines.append((aw, target, count, rate, lo, hi, (rate - target) / target, below))
        err = 100 * (rate - target) / target
        print(f"check run {aw}: {count} events in {py:.1f} person-years = {rate:.2f}/py "
              f"(95% CI {lo:.2f}-{hi:.2f}; target {target}; error {err:+.0f}%), "
              f"time < 54 {below:.2f}% ({time.time() - t0:.0f} s)")  # fmt: skip
    elapsed = time.time() - t0
    errors = ", ".join(f"{aw} {100 * err:+.0f} %" for aw, _, _, _, _, _, err, _ in lines)
    if args.dry_run:
        return 0
    # the ratio 2.8/0.5 = 5.6 of Gold 1994
    note_h0 = (
        f"Fitted by tools/calibrate_severe_hypo.py on {dt.date.today().isoformat()} (seed "
        f"{args.seed}, care-suite population: {n_rows} participants x {args.days} d per cohort, "
        f"pump/MDI with BolusBehaviour) to Gold 1994 [V] 2.8 vs 0.5 events/person-year; "
        f"check-run errors {errors}; see README."
    )
    text = TOML.read_text()
    text = set_entry(text, "h0_per_min", fitted.h0_per_min, note_h0)
    text = set_entry(text, "kappa_per_mg_dl", fitted.kappa_per_mg_dl, note_h0)
    if res["r_fitted"]:
        text = set_entry(text, "r_iah", fitted.r_iah, note_h0 + " Fitted with h0 (kappa kept).")
    TOML.write_text(text)
    HypoglycemiaParameters.packaged()  # the written file must still load
    how = (
        "fitted too: no kappa in 0-0.3 met the file value"
        if res["r_fitted"]
        else "kept at the file value"
    )
    table = "\n".join(
        f"| {aw} | {target} | {count} | {rate:.2f} ({lo:.2f}-{hi:.2f}) | {100 * err:+.0f} % | "
        f"{below:.2f} % |"
        for aw, target, count, rate, lo, hi, err, below in lines
    )
    section = f"""{BEGIN}
Result of `tools/calibrate_severe_hypo.py --participants {args.participants} --days {args.days}
--seed {args.seed}` on {dt.date.today().isoformat()} ({n_rows} participants per cohort =
{py:.1f} person-years, {elapsed:.0f} s):

* fitted `h0_per_min` = {fitted.h0_per_min:.4g} /min,
  `kappa_per_mg_dl` = {fitted.kappa_per_mg_dl:.4g} per mg/dL, `r_iah` = {fitted.r_iah:.3g} ({how}).
  On the exposure run (hazard off) these give the targets exactly (two equations, two
  unknowns); the check run below has the hazard on, so events are treated and later glucose
  changes.
* check run (seed + 1: new carb-counting factors, bolus behaviour and event draws; same
  participants and meals):

| cohort | target (events/py) | events | rate (95 % CI) | error | time < 54 mg/dL |
|---|---|---|---|---|---|
{table}

The error is the relative difference between the achieved rate and the target; the 95 %
interval is the exact Poisson interval of the achieved rate (statistical error only).
{END}"""
    readme = README.read_text()
    if BEGIN in readme and END in readme:
        readme = readme[: readme.index(BEGIN)] + section + readme[readme.index(END) + len(END) :]
    else:
        readme = readme.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(readme)
    print(f"wrote {TOML.relative_to(ROOT)} and {README.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
