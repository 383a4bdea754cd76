"""Age-structured red-cell glycation: HbA1c trajectories from daily mean glucose.

Model (science reference §5.2; mechanism after Ladyzynski P et al. *J Transl Med*
2014;12:328 [V] and Malka R, Nathan DM, Higgins JM *Sci Transl Med* 2016;8:359ra130 [V]):
glycation of haemoglobin inside a red cell is irreversible and first order in glucose, a blood
sample averages over cells of all ages, and cells are removed at the end of their life.

* ``dh/dt + dh/da = k_g G(t) (1 - h)``, ``h(0, t) = h0``; discretised in daily cohorts: each
  day the cohorts age by one day, a new cohort enters with ``h = h0`` and every cohort is
  glycated with ``h <- 1 - (1 - h) exp(-k_g Gbar_day 1 d)`` (exact for a glucose held at the
  daily mean).
* ``A1c(t) = c0 + 100 sum_a p(a) h(a, t)`` with uniform survival ``p(a) = 1/L`` over the
  lifespan ``L = 2 M`` (``M`` the mean red-cell age); a fractional last cohort carries the
  weight of the part of its day that lies inside ``[0, L)``.
* ``k_g`` = 1.296e-9 L/mmol/s (Ladyzynski 2014) [V], converted here to per (mg/dL day) with
  :mod:`isletsim.units` (6.2e-6) [derived]; ``c0 = 46.7 / 28.7`` % (ADAG intercept, the
  glucose-independent offset; constants of :mod:`isletsim.metrics.hba1c`) and ``h0 = 0`` [U].

**Choice of the mean red-cell age M.** The science reference linearises the steady state,
``A1c ~ c0 + 100 k_g G M``, and matches the ADAG slope (1/28.7 % per mg/dL) with ``M ~ 56 d``
(:func:`linearised_mean_rbc_age`). The model is not linear: glycation saturates, and with
``M = 56.06`` the exact steady state falls 0.25 points below ADAG at 200 mg/dL and 0.41 points
at 250 mg/dL. :func:`calibrated_mean_rbc_age` therefore fits ``M`` by least squares of the
*exact* discrete steady state against ADAG over 100-250 mg/dL (our choice [U]); it gives
``M = 58.2 d``, inside the measured 39-60 d (Cohen et al. *Blood* 2008;112:4284 [V]) and close
to 58.7 d (Khera et al. *Am J Hematol* 2015;90:50 [V]); the steady state is then within 0.12
points of ADAG over that range.

The cheap equivalent (:func:`hba1c_triangular`): ``A1c = ADAG^-1(G_w)`` with triangular
weights ``w(s) = 2 (L - s) / L^2`` over the past ``L`` days (science reference §5.2) — the
dynamic model linearised.

Parameters are read from ``isletsim/params/glycation.toml`` (see ``README_physiology.md``).
Arrays are ``(N, ...)`` over participants; glucose is in mg/dL and time in days.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from isletsim.metrics.hba1c import (
    ADAG_INTERCEPT_MGDL,
    ADAG_SLOPE_MGDL_PER_PCT,
    hba1c_from_mean_glucose,
)
from isletsim.params.toml_file import load_tagged_table
from isletsim.units import mg_dl_to_mmol

SECONDS_PER_DAY: float = 86_400.0
_PARAM_FILE = "glycation.toml"
#: Entries of ``params/glycation.toml``.
_PARAMETER_NAMES: tuple[str, ...] = (
    "k_glycation", "h_newborn", "calibration_glucose_min", "calibration_glucose_max",
    "mean_rbc_age_sd", "mean_rbc_age_min_measured", "mean_rbc_age_max_measured",
)  # fmt: skip


# ----------------------------------------------------------------------------- parameters
@cache
def glycation_parameter_table() -> Mapping[str, Mapping[str, Any]]:
    """Raw entries of ``params/glycation.toml``: name -> {value, unit, source, tag, verified}.

    Read with :func:`isletsim.params.toml_file.load_parameter_file` (every parameter of
    :data:`_PARAMETER_NAMES`, no other, each with a finite value, the fields above and
    optionally ``note``), then the science-reference tags are checked
    (:func:`isletsim.params.toml_file.check_tags`).

    Raises
    ------
    isletsim.params.toml_file.ParameterFileError
        A :class:`ValueError` naming the file, parameter and field: a missing or unknown
        parameter or field, a non-finite value, a non-boolean ``verified``, or a tag that
        disagrees with ``verified``/``source`` (``V`` must be verified; ``U`` must have
        ``source = "unverified"``).
    """
    return load_tagged_table("isletsim.params", _PARAM_FILE, expected=_PARAMETER_NAMES)


@dataclass(frozen=True)
class GlycationParameters:
    """Parameters of the glycation model (values of ``params/glycation.toml``).

    Attributes
    ----------
    k_glycation_l_mmol_s : overall glycation rate constant, L/mmol/s (Ladyzynski 2014) [V].
    h_newborn : glycated fraction of a new red cell, ``h0`` [U].
    calibration_glucose_mg_dl : mean-glucose range over which ``M`` is fitted to ADAG [U].
    mean_rbc_age_sd_days : between-participant SD of the mean red-cell age [U].
    mean_rbc_age_measured_days : measured range of the mean red-cell age (Cohen 2008) [V].
    """

    k_glycation_l_mmol_s: float
    h_newborn: float
    calibration_glucose_mg_dl: tuple[float, float]
    mean_rbc_age_sd_days: float
    mean_rbc_age_measured_days: tuple[float, float]

    @property
    def k_g(self) -> float:
        """Glycation rate constant per (mg/dL day): ``k [L/mmol/s] x 86400 s/d x mmol/L per mg/dL``.

        Ladyzynski 2014 [V] value converted with :func:`isletsim.units.mg_dl_to_mmol` [derived]:
        1.296e-9 L/mmol/s = 1.12e-4 L/mmol/day = 6.22e-6 per (mg/dL day).
        """
        return self.k_glycation_l_mmol_s * SECONDS_PER_DAY * mg_dl_to_mmol(1.0)

    @property
    def c0(self) -> float:
        """Glucose-independent A1c offset, % = ADAG intercept 46.7/28.7 (Nathan 2008) [V]."""
        return -ADAG_INTERCEPT_MGDL / ADAG_SLOPE_MGDL_PER_PCT


@cache
def load_glycation_parameters() -> GlycationParameters:
    """The default :class:`GlycationParameters`, read from ``params/glycation.toml``."""
    t = glycation_parameter_table()
    return GlycationParameters(
        k_glycation_l_mmol_s=float(t["k_glycation"]["value"]),
        h_newborn=float(t["h_newborn"]["value"]),
        calibration_glucose_mg_dl=(
            float(t["calibration_glucose_min"]["value"]),
            float(t["calibration_glucose_max"]["value"]),
        ),
        mean_rbc_age_sd_days=float(t["mean_rbc_age_sd"]["value"]),
        mean_rbc_age_measured_days=(
            float(t["mean_rbc_age_min_measured"]["value"]),
            float(t["mean_rbc_age_max_measured"]["value"]),
        ),
    )


def _params(params: GlycationParameters | None) -> GlycationParameters:
    return load_glycation_parameters() if params is None else params


# ----------------------------------------------------------------------------- validation
def _as_glucose(x: Any, n: int, name: str) -> np.ndarray:
    """Glucose (mg/dL) as a float array of shape ``(n,)``; scalars broadcast."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: glucose must be numeric (mg/dL)") from exc
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected a scalar or shape ({n},), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: glucose must be finite (NaN/inf given)")
    if (arr < 0).any():
        raise ValueError(f"{name}: glucose must be >= 0 mg/dL, got {arr[arr < 0][:3].tolist()}")
    return arr


def _as_lifespan(x: Any, n: int, params: GlycationParameters) -> np.ndarray:
    """Red-cell lifespans (days) as a float array of shape ``(n,)``; None -> default."""
    if x is None:
        return np.full(n, default_rbc_lifespan(params))
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError("rbc_lifespan_days: must be numeric (days)") from exc
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(
            f"rbc_lifespan_days: expected a scalar or shape ({n},), got shape {arr.shape}"
        )
    if not np.isfinite(arr).all() or (arr <= 0).any():
        raise ValueError(f"rbc_lifespan_days: must be finite and > 0 days, got {arr[:5]}")
    return arr


# ----------------------------------------------------------------------------- weights
def age_weights(rbc_lifespan_days: np.ndarray, n_cohorts: int | None = None) -> np.ndarray:
    """Uniform-survival weights of daily cohorts, shape ``(N, n_cohorts)``; rows sum to 1.

    Cohort ``j`` holds the cells aged ``[j, j+1)`` days; its weight is the part of that day
    inside ``[0, L)`` divided by ``L`` (``p(a) = 1/L``, science reference §5.2 [U: uniform
    survival]). A non-integer ``L`` gives a fractional last cohort.

    Parameters
    ----------
    rbc_lifespan_days
        Lifespan ``L`` per participant, shape ``(N,)``, > 0.
    n_cohorts
        Number of columns; default ``ceil(max L)``. Must be at least that.
    """
    lifespan = np.asarray(rbc_lifespan_days, dtype=float).reshape(-1)
    if not np.isfinite(lifespan).all() or (lifespan <= 0).any():
        raise ValueError("rbc_lifespan_days: must be finite and > 0 days")
    need = math.ceil(float(lifespan.max())) if lifespan.size else 1
    width = need if n_cohorts is None else n_cohorts
    if width < need:
        raise ValueError(f"n_cohorts: {width} is fewer than the {need} cohorts of the lifespan")
    ages = np.arange(width, dtype=float)
    return np.clip(lifespan[:, None] - ages[None, :], 0.0, 1.0) / lifespan[:, None]


def _steady_state_h(glucose: np.ndarray, width: int, params: GlycationParameters) -> np.ndarray:
    """Glycated fraction of each cohort at steady state, shape ``(N, width)``.

    After its daily update cohort ``j`` has been exposed for ``j + 1`` days:
    ``h_j = 1 - (1 - h0) exp(-k_g G (j + 1))`` (science reference §5.2, solved at constant G).
    """
    exposure = np.arange(1, width + 1, dtype=float)
    return 1.0 - (1.0 - params.h_newborn) * np.exp(-params.k_g * glucose[:, None] * exposure)


def steady_state_hba1c(
    mean_glucose_mg_dl: Any,
    rbc_lifespan_days: Any = None,
    *,
    params: GlycationParameters | None = None,
) -> np.ndarray:
    """Exact steady-state HbA1c (%) of the discrete model at a constant glucose.

    ``A1c = c0 + 100 sum_j w_j [1 - (1 - h0) exp(-k_g G (j + 1))]`` (science reference §5.2
    [U: model], ``k_g`` [V]).

    Parameters
    ----------
    mean_glucose_mg_dl
        Constant glucose, scalar or shape ``(N,)``, mg/dL.
    rbc_lifespan_days
        Lifespan per participant (scalar or ``(N,)``); default :func:`default_rbc_lifespan`.

    Returns
    -------
    numpy.ndarray
        HbA1c in %, shape ``(N,)`` (``(1,)`` for scalar inputs).
    """
    p = _params(params)
    try:
        shape = np.broadcast_shapes(np.shape(mean_glucose_mg_dl), np.shape(rbc_lifespan_days))
    except ValueError as exc:
        raise ValueError("rbc_lifespan_days: shape does not match mean_glucose_mg_dl") from exc
    n = math.prod(shape) if shape else 1
    glucose = _as_glucose(mean_glucose_mg_dl, n, "mean_glucose_mg_dl")
    lifespan = _as_lifespan(rbc_lifespan_days, n, p)
    w = age_weights(lifespan)
    h = _steady_state_h(glucose, w.shape[1], p)
    return p.c0 + 100.0 * np.einsum("ij,ij->i", w, h)


# ----------------------------------------------------------------------------- mean RBC age
def linearised_mean_rbc_age(params: GlycationParameters | None = None) -> float:
    """Mean red-cell age (days) that makes the *linearised* steady state match the ADAG slope.

    ``A1c ~ c0 + 100 k_g G M`` and ``dA1c/dG = 1/28.7`` give ``M = 1 / (100 k_g 28.7)`` =
    56.06 d (science reference §5.2, "our calculation"; Nathan 2008 [V], Ladyzynski 2014 [V]).
    Not used by the model (see the module docstring): kept as the documented reference.
    """
    p = _params(params)
    return 1.0 / (100.0 * p.k_g * ADAG_SLOPE_MGDL_PER_PCT)


@cache
def calibrated_mean_rbc_age(params: GlycationParameters | None = None) -> float:
    """Mean red-cell age ``M`` (days, ``L = 2M``) fitting the exact steady state to ADAG.

    Least squares of ``steady_state_hba1c(G, 2M) - (G + 46.7)/28.7`` over ``G`` on a 1 mg/dL
    grid across ``params.calibration_glucose_mg_dl`` (100-250 mg/dL) [U: our calibration;
    ADAG Nathan 2008 [V]]. Result 58.2 d with the shipped parameters.
    """
    p = _params(params)
    lo, hi = p.calibration_glucose_mg_dl
    if not 0 < lo < hi:
        raise ValueError(f"calibration_glucose_mg_dl: need 0 < min < max, got {(lo, hi)}")
    grid = np.arange(lo, hi + 0.5, 1.0)
    target = np.asarray(hba1c_from_mean_glucose(grid), dtype=float)

    def sse(m: float) -> float:
        a = steady_state_hba1c(grid, np.full(grid.size, 2.0 * m), params=p)
        return float(np.sum((a - target) ** 2))

    m_lin = linearised_mean_rbc_age(p)
    res = minimize_scalar(
        sse, bounds=(0.5 * m_lin, 2.0 * m_lin), method="bounded", options={"xatol": 1e-6}
    )
    if not res.success:  # pragma: no cover - bounded Brent on a smooth 1-D function
        raise RuntimeError(f"calibration of the mean red-cell age failed: {res.message}")
    return float(res.x)


def default_rbc_lifespan(params: GlycationParameters | None = None) -> float:
    """Population red-cell lifespan ``L = 2 M`` (days), ``M`` = :func:`calibrated_mean_rbc_age`."""
    return 2.0 * calibrated_mean_rbc_age(_params(params))


def sample_rbc_lifespan(
    rng: np.random.Generator, n: int, *, params: GlycationParameters | None = None
) -> np.ndarray:
    """Per-participant red-cell lifespans ``L_i = 2 M_i``, ``M_i ~ Normal(M, SD)`` (days).

    ``M`` = :func:`calibrated_mean_rbc_age`, ``SD`` = 5 d (science reference §5.2 [U]: spread
    chosen for about +/-0.5 % A1c at fixed glucose; Khera 2015 [V] reports SD about 4.6 d).
    Untruncated: a non-positive draw (about 11 SD below the mean) raises ``ValueError``.

    Parameters
    ----------
    rng
        Random generator (the caller's, for reproducibility).
    n
        Number of participants, >= 0.

    Returns
    -------
    numpy.ndarray
        Lifespans in days, shape ``(n,)``.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n: expected a non-negative integer, got {n!r}")
    p = _params(params)
    mean_age = calibrated_mean_rbc_age(p) + p.mean_rbc_age_sd_days * rng.standard_normal(n)
    if (mean_age <= 0).any():
        raise ValueError("rbc_lifespan_days: a non-positive lifespan was drawn; check the SD")
    return 2.0 * mean_age


# ----------------------------------------------------------------------------- state
@dataclass
class GlycationState:
    """Glycated fraction of daily red-cell cohorts for ``N`` participants (struct of arrays).

    Attributes
    ----------
    h : glycated fraction, shape ``(N, A)``; column ``j`` is the cohort aged ``j`` days.
    weights : survival weights of the cohorts, shape ``(N, A)``, rows sum to 1
        (:func:`age_weights`).
    rbc_lifespan_days : lifespan ``L`` per participant, shape ``(N,)``.
    params : model parameters.
    """

    h: np.ndarray
    weights: np.ndarray
    rbc_lifespan_days: np.ndarray
    params: GlycationParameters = field(default_factory=load_glycation_parameters)

    @classmethod
    def initial(
        cls,
        n: int,
        steady_glucose_mg_dl: Any,
        rbc_lifespan_days: Any = None,
        *,
        params: GlycationParameters | None = None,
    ) -> GlycationState:
        """State at the steady state of a constant glucose (science reference §5.2).

        Parameters
        ----------
        n
            Number of participants, >= 1.
        steady_glucose_mg_dl
            Long-run mean glucose before the start, scalar or shape ``(n,)``, mg/dL, >= 0.
        rbc_lifespan_days
            Lifespan ``L`` (days, > 0), scalar or shape ``(n,)``; default
            :func:`default_rbc_lifespan`. Draw per-participant values with
            :func:`sample_rbc_lifespan`.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n: expected a positive integer, got {n!r}")
        p = _params(params)
        glucose = _as_glucose(steady_glucose_mg_dl, n, "steady_glucose_mg_dl")
        lifespan = _as_lifespan(rbc_lifespan_days, n, p)
        w = age_weights(lifespan)
        return cls(_steady_state_h(glucose, w.shape[1], p), w, lifespan, p)

    @property
    def n(self) -> int:
        """Number of participants."""
        return int(self.h.shape[0])

    def step_day(self, daily_mean_glucose: Any) -> None:
        """Advance one day in place with the day's mean glucose (mg/dL, scalar or ``(N,)``).

        Cohorts age by one day (the oldest column leaves), a new cohort enters with ``h0``,
        then ``h <- 1 - (1 - h) exp(-k_g Gbar 1 d)`` (science reference §5.2; k_g
        Ladyzynski 2014 [V]).
        """
        glucose = _as_glucose(daily_mean_glucose, self.n, "daily_mean_glucose")
        h = self.h
        h[:, 1:] = h[:, :-1]  # numpy buffers overlapping copies
        h[:, 0] = self.params.h_newborn
        survive = np.exp(-self.params.k_g * glucose)[:, None]
        self.h = 1.0 - (1.0 - h) * survive

    def hba1c(self) -> np.ndarray:
        """HbA1c (NGSP %) per participant: ``c0 + 100 sum_j w_j h_j`` (§5.2; c0 ADAG [V])."""
        return self.params.c0 + 100.0 * np.einsum("ij,ij->i", self.weights, self.h)


def _as_history(daily_mean_glucose: Any) -> tuple[np.ndarray, bool]:
    try:
        g = np.asarray(daily_mean_glucose, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError("daily_mean_glucose: must be numeric (mg/dL)") from exc
    if g.ndim not in (1, 2):
        raise ValueError(f"daily_mean_glucose: expected shape (D,) or (N, D), got {g.shape}")
    one = g.ndim == 1
    g = g[None, :] if one else g
    if g.shape[0] < 1:
        raise ValueError("daily_mean_glucose: no participants (N = 0)")
    if not np.isfinite(g).all():
        raise ValueError("daily_mean_glucose: glucose must be finite (NaN/inf given)")
    if (g < 0).any():
        raise ValueError("daily_mean_glucose: glucose must be >= 0 mg/dL")
    return g, one


def _baseline(g: np.ndarray, baseline_glucose: Any) -> Any:
    if baseline_glucose is not None:
        return baseline_glucose
    if g.shape[1] == 0:
        raise ValueError("baseline_glucose: required when daily_mean_glucose has no days")
    return g[:, 0]


def hba1c_trajectory(
    daily_mean_glucose: Any,
    baseline_glucose: Any = None,
    rbc_lifespan_days: Any = None,
    *,
    params: GlycationParameters | None = None,
) -> np.ndarray:
    """HbA1c (%) at the end of each day of a daily-mean-glucose history (dynamic model).

    Starts from the steady state of ``baseline_glucose`` (:meth:`GlycationState.initial`) and
    applies :meth:`GlycationState.step_day` day by day (science reference §5.2).

    Parameters
    ----------
    daily_mean_glucose
        Daily mean glucose, mg/dL, shape ``(D,)`` (one participant) or ``(N, D)``.
    baseline_glucose
        Mean glucose before day 0 (scalar or ``(N,)``); default: each participant's first day.
    rbc_lifespan_days
        Lifespan (scalar or ``(N,)``); default :func:`default_rbc_lifespan`.

    Returns
    -------
    numpy.ndarray
        HbA1c in %, same shape as ``daily_mean_glucose``.
    """
    g, one = _as_history(daily_mean_glucose)
    state = GlycationState.initial(
        g.shape[0], _baseline(g, baseline_glucose), rbc_lifespan_days, params=params
    )
    out = np.empty_like(g)
    for d in range(g.shape[1]):
        state.step_day(g[:, d])
        out[:, d] = state.hba1c()
    return out[0] if one else out


def step_response_half_time(
    glucose_before_mg_dl: float,
    glucose_after_mg_dl: float,
    rbc_lifespan_days: float | None = None,
    *,
    params: GlycationParameters | None = None,
) -> float:
    """Days for HbA1c to cover half of its change after a glucose step (dynamic model).

    Starts at the steady state of ``glucose_before``, holds ``glucose_after`` and returns the
    time (linear interpolation between days) at which HbA1c passes the midpoint between the
    two steady states. Published: ~30-35 d (Beltran del Rio 2016 [V]; Tahara & Shima 1995
    [U]); the triangular form gives ``L (1 - 1/sqrt 2)``.
    """
    if glucose_before_mg_dl == glucose_after_mg_dl:
        raise ValueError("glucose_after_mg_dl: must differ from glucose_before_mg_dl")
    p = _params(params)
    lifespan = default_rbc_lifespan(p) if rbc_lifespan_days is None else rbc_lifespan_days
    state = GlycationState.initial(1, glucose_before_mg_dl, lifespan, params=p)
    a = [float(state.hba1c()[0])]
    for _ in range(state.h.shape[1] + 1):  # after A days every cohort is new: steady state
        state.step_day(glucose_after_mg_dl)
        a.append(float(state.hba1c()[0]))
    traj = np.asarray(a)
    progress = (traj - traj[0]) / (traj[-1] - traj[0])
    d = int(np.argmax(progress >= 0.5))
    return float(d - 1 + (0.5 - progress[d - 1]) / (progress[d] - progress[d - 1]))


# ----------------------------------------------------------------------------- cheap form
def triangular_weights(rbc_lifespan_days: float) -> np.ndarray:
    """Weights of the past days, ``W_s = int_s^{s+1} 2 (L - u) / L^2 du``, ``s = 0..ceil(L)-1``.

    Triangular kernel ``w(s) = 2 (L - s) / L^2`` of the science reference §5.2 [U: derived
    from uniform survival], averaged over each day so the weights sum to exactly 1
    (``s = 0`` is the current day).
    """
    lifespan = float(rbc_lifespan_days)
    if not math.isfinite(lifespan) or lifespan <= 0:
        raise ValueError(f"rbc_lifespan_days: must be finite and > 0 days, got {lifespan}")
    edges = np.arange(math.ceil(lifespan) + 1, dtype=float)
    tail = (np.clip(lifespan - edges, 0.0, None) / lifespan) ** 2  # mass of ages > s
    return tail[:-1] - tail[1:]


def hba1c_triangular(
    daily_mean_glucose: Any,
    baseline_glucose: Any = None,
    rbc_lifespan_days: Any = None,
    *,
    params: GlycationParameters | None = None,
) -> np.ndarray:
    """Cheap equivalent: ``A1c(t) = (G_w(t) + 46.7) / 28.7``, ``G_w`` triangular-weighted.

    ``G_w(t) = sum_s W_s G(t - s)`` with :func:`triangular_weights` (science reference §5.2
    "cheap equivalent" [U]; ADAG inverse via :func:`isletsim.metrics.hba1c.hba1c_from_mean_glucose`
    [V]). Days before day 0 take ``baseline_glucose``. Same arguments and output as
    :func:`hba1c_trajectory`; it equals the dynamic model linearised in ``k_g``.
    """
    p = _params(params)
    g, one = _as_history(daily_mean_glucose)
    n = g.shape[0]
    base = _as_glucose(_baseline(g, baseline_glucose), n, "baseline_glucose")
    lifespan = _as_lifespan(rbc_lifespan_days, n, p)
    out = np.empty_like(g)
    for i in range(n):
        w = triangular_weights(lifespan[i])
        padded = np.concatenate([np.full(w.size - 1, base[i]), g[i]])
        weighted = np.convolve(padded, w, mode="valid")  # sum_s w[s] padded[t + A-1 - s]
        out[i] = hba1c_from_mean_glucose(weighted)
    return out[0] if one else out


__all__ = [
    "GlycationParameters",
    "GlycationState",
    "age_weights",
    "calibrated_mean_rbc_age",
    "default_rbc_lifespan",
    "glycation_parameter_table",
    "hba1c_trajectory",
    "hba1c_triangular",
    "linearised_mean_rbc_age",
    "load_glycation_parameters",
    "sample_rbc_lifespan",
    "steady_state_hba1c",
    "step_response_half_time",
    "triangular_weights",
]
