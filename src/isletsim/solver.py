"""Compiled, participant-parallel integrator of the model between control steps.

One call of :func:`advance` moves every participant forward by ``n_min`` minutes. Each
minute is one explicit fourth-order Runge-Kutta step (optionally split into ``substeps``)
with the inputs held constant over the minute, as the reference simulator holds them
(simglucose integrates each minute separately with dopri5, rtol 1e-6). Inside a minute the
solver also does the per-minute bookkeeping that is not part of the ODE:

* eating: announced meals join a pile eaten at 5 g/min, and the meal-size memory ``Dbar`` of
  gastric emptying is updated every eating minute (see :mod:`isletsim.meals`);
* insulin delivery: basal rate + a bolus rate for the first ``bolus_min`` minutes of the call,
  + an optional bolus of ``grams * u_per_g`` units at the minute a meal is announced;
* the CGM: sampled from subcutaneous glucose every ``sensor_period`` minutes, held between
  samples, clipped to the sensor range; the mean of the held values over the call is returned
  to the policy (simglucose's observation averaging);
* optional per-minute recording and always-on per-participant running statistics.

The kernel releases the GIL; the engine splits participants into chunks and runs them on
threads. There is no Python loop over participants.

Non-finite states stop the participant and are reported through ``err``; the engine turns that
into an exception naming participant, minute and state. The compiled functions use numba's
``error_model="numpy"``: a division by zero gives inf/NaN (then caught by that check) instead
of a Python exception, which removes a branch from every division of the hot loop.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from isletsim.meals import (
    EAT_RATE_G_PER_MIN,
    M_CHO_LAST,
    M_EATING,
    M_FOODTAKEN,
    M_LAST_QSTO,
    M_PLANNED,
)
from isletsim.model.uva_padova import (
    CPC,
    GP,
    GS,
    HH,
    IP,
    N_INPUTS,
    N_STATES,
    P_BW,
    P_CP_VD,
    P_INV_VG,
    P_INV_VI,
    QSTO1,
    QSTO2,
    prepare_inputs,
    rhs,
)

#: Columns of the running-statistics array (per participant), on subcutaneous glucose.
STAT_COLUMNS: tuple[str, ...] = (
    "n", "sum", "sum_sq", "n_lt54", "n_lt70", "n_70_180", "n_gt180", "n_gt250", "min", "max",
)  # fmt: skip
S_N, S_SUM, S_SUMSQ, S_LT54, S_LT70, S_IN, S_GT180, S_GT250, S_MIN, S_MAX = range(10)
N_STATS = len(STAT_COLUMNS)

def new_stats(n: int) -> np.ndarray:
    """Empty running-statistics array for ``n`` participants."""
    s = np.zeros((n, N_STATS))
    s[:, S_MIN] = np.inf
    s[:, S_MAX] = -np.inf
    return s


@nb.njit(cache=True, inline="always", error_model="numpy")
def _accumulate(stats: np.ndarray, i: int, g: float) -> None:
    stats[i, S_N] += 1.0
    stats[i, S_SUM] += g
    stats[i, S_SUMSQ] += g * g
    if g < 54.0:
        stats[i, S_LT54] += 1.0
    if g < 70.0:
        stats[i, S_LT70] += 1.0
    elif g <= 180.0:
        stats[i, S_IN] += 1.0
    if g > 180.0:
        stats[i, S_GT180] += 1.0
    if g > 250.0:
        stats[i, S_GT250] += 1.0
    if g < stats[i, S_MIN]:
        stats[i, S_MIN] = g
    if g > stats[i, S_MAX]:
        stats[i, S_MAX] = g


#: Columns of the per-minute record (:func:`record_row`).
TRACE: tuple[str, ...] = (
    "glucose_plasma_mg_dl",  # Gp / Vg
    "glucose_sc_mg_dl",  # Gs / Vg (what simglucose calls BG)
    "cgm_mg_dl",  # held CGM value
    "carbs_g",  # eaten during [m, m+1)
    "insulin_u",  # s.c. insulin delivered during [m, m+1)
    "insulin_plasma_pmol_l",  # Ip / Vi
    "cpeptide_pmol_l",  # central C-peptide amount * BW / Vd
    "glucagon_pg_ml",  # plasma glucagon H (S2013)
)
R_GP, R_GS, R_CGM, R_CHO, R_INS, R_IPL, R_CP, R_GLC = range(len(TRACE))


@nb.njit(cache=True, error_model="numpy")
def record_row(row, xi, pi, cgm, cho, ins):
    """Fill one per-minute record (columns :data:`TRACE`) from a state vector."""
    row[R_GP] = xi[GP] * pi[P_INV_VG]
    row[R_GS] = xi[GS] * pi[P_INV_VG]
    row[R_CGM] = cgm
    row[R_CHO] = cho
    row[R_INS] = ins
    row[R_IPL] = xi[IP] * pi[P_INV_VI]
    row[R_CP] = xi[CPC] * pi[P_BW] / pi[P_CP_VD]
    row[R_GLC] = xi[HH]


@nb.njit(cache=True, error_model="numpy")
def record_all(rec, t, x, p, cgm):
    """Record minute ``t`` of every participant with no inputs (the last minute of a run)."""
    for i in range(x.shape[0]):
        record_row(rec[i, t], x[i], p[i], cgm[i], 0.0, 0.0)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _rk4(x, p, u, h, k1, k2, k3, k4, xt):
    n = x.shape[0]
    rhs(x, p, u, k1)
    for j in range(n):
        xt[j] = x[j] + 0.5 * h * k1[j]
    rhs(xt, p, u, k2)
    for j in range(n):
        xt[j] = x[j] + 0.5 * h * k2[j]
    rhs(xt, p, u, k3)
    for j in range(n):
        xt[j] = x[j] + h * k3[j]
    rhs(xt, p, u, k4)
    for j in range(n):
        x[j] = x[j] + h / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j])


@nb.njit(cache=True, nogil=True, error_model="numpy")
def advance(
    x, p, meal, t0, n_min, substeps,
    basal, bolus_rate, bolus_min, announce_u_per_g, phi, insulin_sensitivity, policy_carbs,
    ev_ptr, ev_minute, ev_grams, ev_cursor,
    sensor_period, cgm, cgm_lo, cgm_hi,
    obs_cgm_mean, obs_announced,
    record, rec_start, rec, record_states, rec_x,
    stats, err,
):  # fmt: skip
    """Advance all participants from minute ``t0`` by ``n_min`` minutes (in place).

    Arrays are per participant (first axis N). ``phi`` is the functional graft fraction over the
    call (0: no endogenous secretion); ``insulin_sensitivity`` the multiplier of insulin action
    (``Vmx``, ``kp3``; 1 = nominal) over the call; ``policy_carbs`` (g) join the eating pile at
    the first minute of the call (a policy's carbohydrate, e.g. treating a low; never bolused
    and not reported as an announced meal). ``rec`` is (N, T+1-rec_start, len(TRACE)) indexed by
    absolute minute minus ``rec_start``, written only when ``record`` is true and the minute is
    at or after ``rec_start`` (pass a 1x1x1 array when not recording); ``rec_x`` (N, T+1,
    n_states) likewise when ``record_states`` is true. ``err`` (N, 2) receives (minute, state
    index) of the first non-finite state.

    Runs without the GIL, so the engine runs chunks of participants on several threads;
    participants are independent, so results do not depend on the chunking.
    """
    h = 1.0 / substeps
    k1 = np.empty(N_STATES)
    k2 = np.empty(N_STATES)
    k3 = np.empty(N_STATES)
    k4 = np.empty(N_STATES)
    xt = np.empty(N_STATES)
    u = np.empty(N_INPUTS)
    for i in range(x.shape[0]):
        if err[i, 0] >= 0:
            continue
        xi = x[i]
        pi = p[i]
        cgm_sum = 0.0
        announced_sum = 0.0
        cur = ev_cursor[i]
        end = ev_ptr[i + 1]
        for k in range(n_min):
            t = t0 + k
            # --- meals announced at this minute
            announced = 0.0
            while cur < end and ev_minute[cur] <= t:
                if ev_minute[cur] == t:
                    announced += ev_grams[cur]
                cur += 1
            announced_sum += announced
            # --- eating at 5 g/min and the meal-size memory (simglucose T1DPatient.step)
            planned = meal[i, M_PLANNED] + announced
            if k == 0:
                planned += policy_carbs[i]  # e.g. treatment of a low: eaten, not bolused
            to_eat = 0.0
            if planned > 0.0:
                to_eat = min(EAT_RATE_G_PER_MIN, planned)
                planned = max(0.0, planned - to_eat)
            meal[i, M_PLANNED] = planned
            if to_eat > 0.0 and meal[i, M_CHO_LAST] <= 0.0:
                meal[i, M_LAST_QSTO] = xi[QSTO1] + xi[QSTO2]
                meal[i, M_FOODTAKEN] = 0.0
                meal[i, M_EATING] = 1.0
            if meal[i, M_EATING] > 0.0:
                meal[i, M_FOODTAKEN] += to_eat
            if to_eat <= 0.0 and meal[i, M_CHO_LAST] > 0.0:
                meal[i, M_EATING] = 0.0
            meal[i, M_CHO_LAST] = to_eat
            dbar = meal[i, M_LAST_QSTO] + meal[i, M_FOODTAKEN] * 1000.0
            # --- insulin delivered over [t, t+1), U/min
            ins = basal[i]
            if k < bolus_min[i]:
                ins += bolus_rate[i]
            if announced > 0.0:
                ins += announced * announce_u_per_g[i]
            if record and t >= rec_start:
                record_row(rec[i, t - rec_start], xi, pi, cgm[i], to_eat, ins)
            if record_states:
                for j in range(N_STATES):
                    rec_x[i, t, j] = xi[j]
            # --- integrate one minute
            prepare_inputs(pi, to_eat, ins, dbar, phi[i], u, 0.0, insulin_sensitivity[i])
            for _ in range(substeps):
                _rk4(xi, pi, u, h, k1, k2, k3, k4, xt)
            bad = -1
            for j in range(N_STATES):
                if not math.isfinite(xi[j]):
                    bad = j
                    break
            if bad >= 0:
                err[i, 0] = t + 1
                err[i, 1] = bad
                break
            # --- sensor at the new minute
            gs = xi[GS] * pi[P_INV_VG]
            if (t + 1) % sensor_period == 0:
                c = gs
                if c < cgm_lo:
                    c = cgm_lo
                if c > cgm_hi:
                    c = cgm_hi
                cgm[i] = c
            cgm_sum += cgm[i]
            _accumulate(stats, i, gs)
        ev_cursor[i] = cur
        obs_cgm_mean[i] = cgm_sum / n_min
        obs_announced[i] = announced_sum
