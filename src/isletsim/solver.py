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
threads. There is no Python loop over participants. Within a call the kernel takes participants
in blocks of :data:`~isletsim.model.uva_padova.LANES` laid out as structure of arrays, so that
the right-hand side (:func:`~isletsim.model.uva_padova.rhs_lanes`) and the bookkeeping compile
to SIMD instructions; each participant's result is bit for bit that of integrating it alone.

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
    N_MEAL_COLUMNS,
)
from isletsim.model.uva_padova import (
    CPC,
    GP,
    GS,
    HH,
    IP,
    LANES,
    N_INPUTS,
    N_PARAMS,
    N_STATES,
    P_BW,
    P_CP_VD,
    P_INV_VG,
    P_INV_VI,
    QSTO1,
    QSTO2,
    prepare_inputs,
    prepare_inputs_lanes,
    rhs,
    rhs_lanes,
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


@nb.njit(cache=True, inline="always", error_model="numpy")
def _rk4_lanes(x, p, u, h, k1, k2, k3, k4, xt):
    """:func:`_rk4` on a block of :data:`LANES` participants (flat lane layout)."""
    n = x.shape[0]
    rhs_lanes(x, p, u, k1)
    for j in range(n):
        xt[j] = x[j] + 0.5 * h * k1[j]
    rhs_lanes(xt, p, u, k2)
    for j in range(n):
        xt[j] = x[j] + 0.5 * h * k2[j]
    rhs_lanes(xt, p, u, k3)
    for j in range(n):
        xt[j] = x[j] + h * k3[j]
    rhs_lanes(xt, p, u, k4)
    for j in range(n):
        x[j] = x[j] + h / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j])


@nb.njit(cache=True, inline="always", error_model="numpy")
def _record_row_lane(row, xs, ln, pi, cgm, cho, ins):
    """:func:`record_row` from lane ``ln`` of a block's states (flat lane layout)."""
    row[R_GP] = xs[GP * LANES + ln] * pi[P_INV_VG]
    row[R_GS] = xs[GS * LANES + ln] * pi[P_INV_VG]
    row[R_CGM] = cgm
    row[R_CHO] = cho
    row[R_INS] = ins
    row[R_IPL] = xs[IP * LANES + ln] * pi[P_INV_VI]
    row[R_CP] = xs[CPC * LANES + ln] * pi[P_BW] / pi[P_CP_VD]
    row[R_GLC] = xs[HH * LANES + ln]


@nb.njit(cache=True, inline="always", error_model="numpy")
def _accumulate_lane(ls, ln, g):
    """:func:`_accumulate` into lane ``ln`` of a block's statistics, with selects for branches."""
    W = LANES
    ls[S_N * W + ln] += 1.0
    ls[S_SUM * W + ln] += g
    ls[S_SUMSQ * W + ln] += g * g
    n = ls[S_LT54 * W + ln]
    ls[S_LT54 * W + ln] = n + 1.0 if g < 54.0 else n
    below70 = g < 70.0
    n = ls[S_LT70 * W + ln]
    ls[S_LT70 * W + ln] = n + 1.0 if below70 else n
    n = ls[S_IN * W + ln]
    ls[S_IN * W + ln] = n + 1.0 if ((not below70) & (g <= 180.0)) else n
    n = ls[S_GT180 * W + ln]
    ls[S_GT180 * W + ln] = n + 1.0 if g > 180.0 else n
    n = ls[S_GT250 * W + ln]
    ls[S_GT250 * W + ln] = n + 1.0 if g > 250.0 else n
    lo = ls[S_MIN * W + ln]
    ls[S_MIN * W + ln] = g if g < lo else lo
    hi = ls[S_MAX * W + ln]
    ls[S_MAX * W + ln] = g if g > hi else hi


@nb.njit(cache=True, inline="always", error_model="numpy")
def _lane_finite(xs, ln):
    """Whether every state of lane ``ln`` is finite (``0 * x`` is NaN exactly when ``x`` is not)."""
    s = 0.0
    for j in range(N_STATES):
        s += xs[j * LANES + ln] * 0.0
    return math.isfinite(s)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _first_non_finite(xs, ln):
    """Index of the first non-finite state of lane ``ln`` (-1 if none)."""
    for j in range(N_STATES):
        if not math.isfinite(xs[j * LANES + ln]):
            return j
    return -1


#: Rows of the lane-local bookkeeping of a block (flat (rows, LANES) array in :func:`advance`).
(
    L_PLANNED, L_LAST_QSTO, L_FOODTAKEN, L_EATING, L_CHO_LAST,  # meal columns M_*, same order
    L_CGM, L_CGM_SUM, L_ANN_SUM, L_ANN, L_CHO, L_INS, L_DBAR,
    L_BASAL, L_BOLUS, L_U_PER_G, L_PHI, L_SI, L_CARBS, L_HIR,
) = range(19)  # fmt: skip
N_LANE_ROWS = 19
#: Fewest running participants worth a block of :data:`LANES` lanes: a ragged last block with
#: fewer runs them one at a time (scalar, :func:`_advance_scalar`), which is then faster.
MIN_LANES_USED = 5


@nb.njit(cache=True, inline="always", error_model="numpy")
def _gather_lane(ln, i, x, p, meal, basal, bolus_rate, bolus_min, announce_u_per_g, phi,
                 insulin_sensitivity, policy_carbs, ev_ptr, ev_cursor, cgm, stats,
                 xs, ps, lv, ls, li):  # fmt: skip
    """Copy participant ``i`` into lane ``ln`` of the block arrays."""
    W = LANES
    for j in range(N_STATES):
        xs[j * W + ln] = x[i, j]
    for j in range(N_PARAMS):
        ps[j * W + ln] = p[i, j]
    for j in range(N_MEAL_COLUMNS):
        lv[(L_PLANNED + j) * W + ln] = meal[i, j]
    for j in range(N_STATS):
        ls[j * W + ln] = stats[i, j]
    lv[L_CGM * W + ln] = cgm[i]
    lv[L_CGM_SUM * W + ln] = 0.0
    lv[L_ANN_SUM * W + ln] = 0.0
    lv[L_BASAL * W + ln] = basal[i]
    lv[L_BOLUS * W + ln] = bolus_rate[i]
    lv[L_U_PER_G * W + ln] = announce_u_per_g[i]
    lv[L_PHI * W + ln] = phi[i]
    lv[L_SI * W + ln] = insulin_sensitivity[i]
    lv[L_CARBS * W + ln] = policy_carbs[i]
    lv[L_HIR * W + ln] = 0.0
    li[ln] = ev_cursor[i]  # event cursor
    li[W + ln] = ev_ptr[i + 1]  # end of the participant's events
    li[2 * W + ln] = bolus_min[i]


@nb.njit(cache=True, inline="always", error_model="numpy")
def _scatter_lane(ln, i, n_min, x, meal, ev_cursor, cgm, obs_cgm_mean, obs_announced, stats,
                  xs, lv, ls, li):  # fmt: skip
    """Copy lane ``ln`` of the block arrays back to participant ``i``."""
    W = LANES
    for j in range(N_STATES):
        x[i, j] = xs[j * W + ln]
    for j in range(N_MEAL_COLUMNS):
        meal[i, j] = lv[(L_PLANNED + j) * W + ln]
    for j in range(N_STATS):
        stats[i, j] = ls[j * W + ln]
    cgm[i] = lv[L_CGM * W + ln]
    ev_cursor[i] = li[ln]
    obs_cgm_mean[i] = lv[L_CGM_SUM * W + ln] / n_min
    obs_announced[i] = lv[L_ANN_SUM * W + ln]


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
    index) of the first non-finite state; a participant whose ``err[i, 0] >= 0`` is skipped.

    Participants still running are taken in blocks of :data:`LANES` (the last block padded
    with copies of its first participant, integrated and discarded; a ragged last block of
    fewer than :data:`MIN_LANES_USED` participants runs them one at a time instead,
    :func:`_advance_scalar`). A block's states,
    parameters and bookkeeping (meals, CGM, statistics) are gathered into lane arrays, every
    minute is computed for all lanes at once (:func:`prepare_inputs_lanes`, RK4 over
    :func:`rhs_lanes`, sensor and statistics as selects, so the loops compile to SIMD), and the
    lanes are scattered back at the end of the call. Every participant gets bit for bit the
    result of integrating it alone (:func:`_advance_scalar`, the reference).

    Non-finite states: a non-finite state stays non-finite (``x + h * k`` is inf or NaN when
    ``x`` is), so a block whose lanes are all finite at the end of the call was finite at
    every minute and needs no per-minute check. Otherwise (and whenever minutes are recorded)
    the block is computed again from its gathered start (nothing was written back yet) with a
    check after every minute: a lane that turns non-finite is written back and stops at that
    minute while the rest of its block goes on.

    Runs without the GIL, so the engine runs chunks of participants on several threads;
    participants are independent, so results do not depend on the chunking.
    """
    W = LANES
    n = x.shape[0]
    todo = np.empty(n, dtype=np.int64)  # participants still running, in order
    m = 0
    for i in range(n):
        if err[i, 0] < 0:
            todo[m] = i
            m += 1
    recording = record or record_states
    tail = m % W
    m_lanes = m - tail if tail < MIN_LANES_USED else m  # a short ragged tail runs scalar
    if m_lanes < m:
        # the tail is every running participant from todo[m_lanes] on; the others there are
        # skipped (err set), as _advance_scalar skips them
        a = todo[m_lanes]
        _advance_scalar(
            x[a:], p[a:], meal[a:], t0, n_min, substeps,
            basal[a:], bolus_rate[a:], bolus_min[a:], announce_u_per_g[a:], phi[a:],
            insulin_sensitivity[a:], policy_carbs[a:],
            ev_ptr[a:], ev_minute, ev_grams, ev_cursor[a:],
            sensor_period, cgm[a:], cgm_lo, cgm_hi,
            obs_cgm_mean[a:], obs_announced[a:],
            record, rec_start, rec[a:] if record else rec, record_states,
            rec_x[a:] if record_states else rec_x,
            stats[a:], err[a:],
        )  # fmt: skip
    if m_lanes == 0:
        return
    h = 1.0 / substeps
    xs = np.empty(N_STATES * W)
    k1 = np.empty(N_STATES * W)
    k2 = np.empty(N_STATES * W)
    k3 = np.empty(N_STATES * W)
    k4 = np.empty(N_STATES * W)
    xt = np.empty(N_STATES * W)
    ps = np.empty(N_PARAMS * W)
    us = np.empty(N_INPUTS * W)
    lv = np.empty(N_LANE_ROWS * W)  # per-lane bookkeeping, rows L_*
    ls = np.empty(N_STATS * W)  # per-lane running statistics, rows S_*
    li = np.empty(3 * W, dtype=np.int64)  # event cursor, end of events, bolus minutes
    lane = np.empty(W, dtype=np.int64)
    live = np.empty(W, dtype=np.bool_)
    for b in range(0, m_lanes, W):
        checked = recording  # check every minute (else only at the end of the call)
        while True:
            # --- gather the block (padding lanes: copies of its first participant)
            n_live = 0
            for ln in range(W):
                live[ln] = b + ln < m
                n_live += live[ln]
                i = todo[b + ln] if live[ln] else todo[b]
                lane[ln] = i
                _gather_lane(ln, i, x, p, meal, basal, bolus_rate, bolus_min, announce_u_per_g,
                             phi, insulin_sensitivity, policy_carbs, ev_ptr, ev_cursor, cgm,
                             stats, xs, ps, lv, ls, li)  # fmt: skip
            for k in range(n_min):
                t = t0 + k
                # --- meals announced at this minute (per lane: event lists)
                for ln in range(W):
                    announced = 0.0
                    c = li[ln]
                    end = li[W + ln]
                    while c < end and ev_minute[c] <= t:
                        if ev_minute[c] == t:
                            announced += ev_grams[c]
                        c += 1
                    li[ln] = c
                    lv[L_ANN * W + ln] = announced
                # --- eating at 5 g/min, meal-size memory (simglucose T1DPatient.step), insulin
                first = k == 0
                for ln in range(W):
                    announced = lv[L_ANN * W + ln]
                    lv[L_ANN_SUM * W + ln] += announced
                    planned = lv[L_PLANNED * W + ln] + announced
                    with_carbs = planned + lv[L_CARBS * W + ln]  # e.g. treatment of a low
                    planned = with_carbs if first else planned
                    bite = min(EAT_RATE_G_PER_MIN, planned)
                    left = max(0.0, planned - bite)
                    hungry = planned > 0.0
                    to_eat = bite if hungry else 0.0
                    lv[L_PLANNED * W + ln] = left if hungry else planned
                    cho_last = lv[L_CHO_LAST * W + ln]
                    starts = (to_eat > 0.0) & (cho_last <= 0.0)
                    qsto = xs[QSTO1 * W + ln] + xs[QSTO2 * W + ln]
                    last_qsto = qsto if starts else lv[L_LAST_QSTO * W + ln]
                    foodtaken = 0.0 if starts else lv[L_FOODTAKEN * W + ln]
                    eating = 1.0 if starts else lv[L_EATING * W + ln]
                    eaten = foodtaken + to_eat
                    foodtaken = eaten if eating > 0.0 else foodtaken
                    eating = 0.0 if ((to_eat <= 0.0) & (cho_last > 0.0)) else eating
                    lv[L_LAST_QSTO * W + ln] = last_qsto
                    lv[L_FOODTAKEN * W + ln] = foodtaken
                    lv[L_EATING * W + ln] = eating
                    lv[L_CHO_LAST * W + ln] = to_eat
                    lv[L_CHO * W + ln] = to_eat
                    lv[L_DBAR * W + ln] = last_qsto + foodtaken * 1000.0
                    # insulin delivered over [t, t+1), U/min
                    ins = lv[L_BASAL * W + ln]
                    with_bolus = ins + lv[L_BOLUS * W + ln]
                    ins = with_bolus if k < li[2 * W + ln] else ins
                    with_meal_bolus = ins + announced * lv[L_U_PER_G * W + ln]
                    lv[L_INS * W + ln] = with_meal_bolus if announced > 0.0 else ins
                if recording:
                    for ln in range(W):
                        if not live[ln]:
                            continue
                        i = lane[ln]
                        if record and t >= rec_start:
                            _record_row_lane(rec[i, t - rec_start], xs, ln, p[i],
                                             lv[L_CGM * W + ln], lv[L_CHO * W + ln],
                                             lv[L_INS * W + ln])  # fmt: skip
                        if record_states:
                            for j in range(N_STATES):
                                rec_x[i, t, j] = xs[j * W + ln]
                prepare_inputs_lanes(
                    ps, lv[L_CHO * W : (L_CHO + 1) * W], lv[L_INS * W : (L_INS + 1) * W],
                    lv[L_DBAR * W : (L_DBAR + 1) * W], lv[L_PHI * W : (L_PHI + 1) * W], us,
                    lv[L_HIR * W : (L_HIR + 1) * W], lv[L_SI * W : (L_SI + 1) * W],
                )  # fmt: skip
                # --- integrate one minute, all lanes at once
                for _ in range(substeps):
                    _rk4_lanes(xs, ps, us, h, k1, k2, k3, k4, xt)
                if checked:
                    for ln in range(W):
                        if live[ln] and not _lane_finite(xs, ln):
                            i = lane[ln]
                            err[i, 0] = t + 1
                            err[i, 1] = _first_non_finite(xs, ln)
                            _scatter_lane(ln, i, n_min, x, meal, ev_cursor, cgm, obs_cgm_mean,
                                          obs_announced, stats, xs, lv, ls, li)  # fmt: skip
                            live[ln] = False  # stops here; the lane's values are now unused
                            n_live -= 1
                    if n_live == 0:
                        break
                # --- sensor at the new minute, running statistics (all lanes)
                sample = (t + 1) % sensor_period == 0
                for ln in range(W):
                    gs = xs[GS * W + ln] * ps[P_INV_VG * W + ln]
                    c = gs
                    c = cgm_lo if c < cgm_lo else c
                    c = cgm_hi if c > cgm_hi else c
                    held = c if sample else lv[L_CGM * W + ln]
                    lv[L_CGM * W + ln] = held
                    lv[L_CGM_SUM * W + ln] += held
                    _accumulate_lane(ls, ln, gs)
            if checked:
                break
            finite = True
            for ln in range(W):
                if live[ln] and not _lane_finite(xs, ln):
                    finite = False
            if finite:
                break
            checked = True  # a lane turned non-finite: again, minute by minute
        # --- scatter the block back
        for ln in range(W):
            if live[ln]:
                _scatter_lane(ln, lane[ln], n_min, x, meal, ev_cursor, cgm, obs_cgm_mean,
                              obs_announced, stats, xs, lv, ls, li)  # fmt: skip


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _advance_scalar(
    x, p, meal, t0, n_min, substeps,
    basal, bolus_rate, bolus_min, announce_u_per_g, phi, insulin_sensitivity, policy_carbs,
    ev_ptr, ev_minute, ev_grams, ev_cursor,
    sensor_period, cgm, cgm_lo, cgm_hi,
    obs_cgm_mean, obs_announced,
    record, rec_start, rec, record_states, rec_x,
    stats, err,
):  # fmt: skip
    """Reference kernel: :func:`advance` one participant at a time (scalar :func:`rhs`).

    Same arguments and results, bit for bit, as :func:`advance`, which lays participants out
    in SIMD lanes. This is :func:`advance` as it was before the lanes, kept to test that
    equality (``tests/test_solver_lanes.py``); :func:`advance` also calls it for a short
    ragged tail of participants.
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
