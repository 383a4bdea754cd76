"""The lane (SIMD) kernel equals the scalar reference bit for bit.

:func:`isletsim.model.uva_padova.rhs_lanes` against :func:`~isletsim.model.uva_padova.rhs`
on random and edge states, and :func:`isletsim.solver.advance` against the scalar reference
kernel :func:`isletsim.solver._advance_scalar` over many control steps: meals, boluses,
policy carbohydrate, graft, alpha cells, insulin sensitivity, recording, ragged N, skipped
participants and participants whose state turns non-finite in the middle of a call.
"""

from __future__ import annotations

import numpy as np
import pytest

from isletsim import solver
from isletsim.meals import MealEvents, new_meal_state
from isletsim.model import uva_padova as m
from isletsim.params import load_cohort

W = m.LANES


def _bits(a: np.ndarray) -> np.ndarray:
    """The bit patterns of a float64 array (so -0.0 != 0.0 and NaN payloads count)."""
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


def assert_bits_equal(a: np.ndarray, b: np.ndarray, what: str = "") -> None:
    if a.dtype.kind == "f":
        same = _bits(a) == _bits(b)
    else:
        same = a == b
    if not np.all(same):
        where = np.argwhere(~same)[:5]
        raise AssertionError(f"{what}: {(~same).sum()} differ, first at {where.tolist()}")


@pytest.fixture(scope="module")
def cohort():
    table = load_cohort()
    return m.parameter_matrix(table), m.initial_state(table)


def _random_lane_inputs(rng, p_rows, x_rows, n):
    """n random (x, p, u) participants covering the branches of the right-hand side."""
    pick = rng.integers(0, len(p_rows), n)
    p = p_rows[pick] * rng.uniform(0.7, 1.3, (n, m.N_PARAMS))
    # alpha cells without a graft in some participants (a != 0 at phi = 0)
    p[:, m.P_GA_NATIVE] = np.where(rng.random(n) < 0.3, rng.uniform(0.0, 1.0, n), 0.0)
    x = x_rows[pick] * rng.uniform(0.0, 3.0, (n, m.N_STATES))
    x[:, m.QSTO1] = np.where(rng.random(n) < 0.5, rng.uniform(0.0, 8e4, n), 0.0)
    x[:, m.QSTO2] = np.where(rng.random(n) < 0.5, rng.uniform(0.0, 8e4, n), 0.0)
    x[:, m.QGUT] = rng.uniform(0.0, 5e4, n)
    # Gp on both sides of ke2 (renal excretion), G on both sides of Gb (glucagon)
    x[:, m.GP] = rng.uniform(0.2, 3.0, n) * p[:, m.P_KE2]
    x[:, m.GS] = x[:, m.GP] * rng.uniform(0.8, 1.2, n)
    x[:, m.IPO] = np.where(rng.random(n) < 0.5, rng.uniform(0.0, 5.0, n), 0.0)
    x[:, m.YS] = rng.uniform(-3.0, 3.0, n)
    x[:, m.CPC] = rng.uniform(0.0, 10.0, n)
    x[:, m.CPP] = rng.uniform(0.0, 10.0, n)
    x[:, m.HH] = rng.uniform(0.0, 300.0, n)
    x[:, m.XH] = rng.uniform(0.0, 100.0, n)
    x[:, m.SRSH] = rng.uniform(0.0, 10.0, n)
    x[:, m.HSC1] = rng.uniform(0.0, 50.0, n)
    x[:, m.HSC2] = rng.uniform(0.0, 50.0, n)
    # negative states (the non-negativity gates), exact zeros
    neg = rng.random((n, m.N_STATES)) < 0.1
    x[neg] = -rng.uniform(0.0, 5.0, neg.sum())
    x[rng.random((n, m.N_STATES)) < 0.05] = 0.0
    u = np.empty((n, m.N_INPUTS))
    for i in range(n):
        cho = rng.choice([0.0, 5.0, rng.uniform(0.0, 5.0)])
        ins = rng.choice([0.0, rng.uniform(0.0, 0.05), rng.uniform(0.0, 2.0)])
        dbar = rng.choice([0.0, rng.uniform(1e3, 9e4)])
        phi = rng.choice([0.0, rng.uniform(0.0, 1.5)])
        hir = rng.choice([0.0, rng.uniform(0.0, 20.0)])
        si = rng.choice([1.0, rng.uniform(0.0, 2.5)])
        m.prepare_inputs(p[i], cho, ins, dbar, phi, u[i], hir, si)
    return x, p, u


def _rhs_both(x, p, u):
    """dx of every participant from the scalar rhs and from rhs_lanes (blocks of W)."""
    n = len(x)
    ref = np.empty((n, m.N_STATES))
    for i in range(n):
        m.rhs(x[i], p[i], u[i], ref[i])
    lanes = np.empty((n, m.N_STATES))
    for b in range(0, n, W):
        idx = np.arange(b, b + W) % n  # ragged last block wraps around
        xs = np.ascontiguousarray(x[idx].T).ravel()
        ps = np.ascontiguousarray(p[idx].T).ravel()
        us = np.ascontiguousarray(u[idx].T).ravel()
        dx = np.full(m.N_STATES * W, np.nan)
        m.rhs_lanes(xs, ps, us, dx)
        got = dx.reshape(m.N_STATES, W).T
        k = min(W, n - b)
        lanes[b : b + k] = got[:k]
    return ref, lanes


def test_rhs_lanes_equals_rhs_bit_for_bit(cohort):
    rng = np.random.default_rng(20250611)
    x, p, u = _random_lane_inputs(rng, *cohort, 4000)
    ref, lanes = _rhs_both(x, p, u)
    assert np.isfinite(ref).all()
    assert_bits_equal(lanes, ref, "rhs_lanes vs rhs")


def test_rhs_lanes_branches_are_exercised(cohort):
    """The random states of the test above take both sides of every branch of rhs."""
    rng = np.random.default_rng(20250611)
    x, p, u = _random_lane_inputs(rng, *cohort, 4000)
    g = x[:, m.GP] * p[:, m.P_INV_VG]
    for cond in (
        u[:, m.U_HASMEAL] > 0.0,
        x[:, m.GP] > p[:, m.P_KE2],
        x[:, m.IPO] != 0.0,
        u[:, m.U_ACELL] != 0.0,
        u[:, m.U_PHI] > 0.0,
        g >= p[:, m.P_GGB],
        x[:, m.GS] < 0.0,
        p[:, m.P_SBETA] * (g - p[:, m.P_SH]) >= -p[:, m.P_SSB],
    ):
        assert cond.any() and not cond.all()


def test_rhs_lanes_edge_states(cohort):
    """Basal states, zero and negative states, nothing remembered, graft and alpha cells."""
    p_rows, x_rows = cohort
    xs, ps, us = [], [], []
    for i in range(len(p_rows)):
        for phi, native, dbar, scale in [
            (0.0, 0.0, 0.0, 1.0), (0.8, 0.0, 4.5e4, 1.0), (0.0, 0.5, 1e4, 0.3),
            (1.0, 0.0, 0.0, 0.0), (0.5, 0.2, 7e4, -1.0),
        ]:  # fmt: skip
            p = p_rows[i].copy()
            p[m.P_GA_NATIVE] = native
            x = x_rows[i] * scale
            u = np.empty(m.N_INPUTS)
            m.prepare_inputs(p, 5.0 if dbar else 0.0, 0.01, dbar, phi, u, 0.0, 1.0)
            xs.append(x)
            ps.append(p)
            us.append(u)
    ref, lanes = _rhs_both(np.array(xs), np.array(ps), np.array(us))
    assert_bits_equal(lanes, ref, "rhs_lanes vs rhs on edge states")


def test_rhs_lanes_non_finite_states_stay_non_finite(cohort):
    rng = np.random.default_rng(7)
    x, p, u = _random_lane_inputs(rng, *cohort, 64)
    x[::3, rng.integers(0, m.N_STATES, 22)] = np.nan
    x[1::5, m.GP] = np.inf
    ref, lanes = _rhs_both(x, p, u)
    np.testing.assert_array_equal(lanes, ref)  # NaN == NaN here
    assert_bits_equal(lanes[np.isfinite(ref)], ref[np.isfinite(ref)], "finite entries")


def test_prepare_inputs_lanes_equals_prepare_inputs(cohort):
    rng = np.random.default_rng(3)
    n = 4 * W
    _, p, _ = _random_lane_inputs(rng, *cohort, n)
    cho = rng.choice([0.0, 5.0, 2.5], n)
    ins = rng.choice([0.0, 0.01, -0.0, 1.5], n)
    dbar = rng.choice([0.0, -0.0, 4.5e4, 1e3], n)
    phi = rng.choice([0.0, 0.7], n)
    hir = rng.choice([0.0, 3.0], n)
    si = rng.choice([1.0, 0.6], n)
    for b in range(0, n, W):
        s = slice(b, b + W)
        ref = np.empty((W, m.N_INPUTS))
        for k in range(W):
            i = b + k
            m.prepare_inputs(p[i], cho[i], ins[i], dbar[i], phi[i], ref[k], hir[i], si[i])
        got = np.empty(m.N_INPUTS * W)
        ps = np.ascontiguousarray(p[s].T).ravel()
        m.prepare_inputs_lanes(ps, cho[s], ins[s], dbar[s], phi[s], got, hir[s], si[s])
        assert_bits_equal(got.reshape(m.N_INPUTS, W).T, ref, "prepare_inputs_lanes")


# ---------------------------------------------------------------------------------- advance
class _Run:
    """Every array :func:`solver.advance` reads or writes, for one kernel."""

    def __init__(self, p, x, events, total, record, rec_start, record_states, err):
        n = len(x)
        self.x, self.p = x.copy(), p
        self.meal = new_meal_state(n)
        self.ev = events
        self.ev_cursor = events.ptr[:-1].copy()
        self.cgm = np.clip(x[:, m.GS] * p[:, m.P_INV_VG], 39.0, 400.0)
        self.obs_cgm = self.cgm.copy()
        self.obs_announced = np.zeros(n)
        self.stats = solver.new_stats(n)
        self.err = err.copy()
        self.record, self.rec_start, self.record_states = record, rec_start, record_states
        n_trace = len(solver.TRACE)
        self.rec = np.zeros((n, total + 1 - rec_start, n_trace) if record else (1, 1, 1))
        self.rec_x = np.zeros((n, total + 1, m.N_STATES) if record_states else (1, 1, 1))

    def step(self, kernel, t, n_min, substeps, basal, bolus, bolus_min, u_per_g, phi, si, carbs):
        ev = self.ev
        kernel(
            self.x, self.p, self.meal, t, n_min, substeps,
            basal, bolus, bolus_min, u_per_g, phi, si, carbs,
            ev.ptr, ev.minute, ev.grams, self.ev_cursor,
            5, self.cgm, 39.0, 400.0,
            self.obs_cgm, self.obs_announced,
            self.record, self.rec_start, self.rec, self.record_states, self.rec_x,
            self.stats, self.err,
        )  # fmt: skip

    def arrays(self):
        return {
            "x": self.x, "meal": self.meal, "ev_cursor": self.ev_cursor, "cgm": self.cgm,
            "obs_cgm": self.obs_cgm, "obs_announced": self.obs_announced,
            "stats": self.stats, "err": self.err, "rec": self.rec, "rec_x": self.rec_x,
        }  # fmt: skip


def _scenario(cohort, n, seed):
    """n participants (cohort rows with varied parameters), random meal events."""
    p_rows, x_rows = cohort
    rng = np.random.default_rng(seed)
    pick = np.arange(n) % len(p_rows)
    p = p_rows[pick] * rng.uniform(0.9, 1.1, (n, m.N_PARAMS))
    p[:, m.P_GA_NATIVE] = np.where(rng.random(n) < 0.2, 0.3, 0.0)
    x = x_rows[pick].copy()
    x[:, m.HH] = p[:, m.P_GHB]
    x[:, m.SRSH] = p[:, m.P_GN] * p[:, m.P_GHB]
    events = []
    for _ in range(n):
        k = rng.integers(0, 6)
        minutes = np.sort(rng.choice(np.arange(0, 600), k, replace=False))
        events.append([(int(t), float(rng.choice([10.0, 45.0, 80.0]))) for t in minutes])
    return p, x, MealEvents.from_lists(events), rng


def _run_both(cohort, n, seed, total=600, record=True, rec_start=30, record_states=True,
              substeps=1, err=None, mutate=None):  # fmt: skip
    p, x, events, rng = _scenario(cohort, n, seed)
    if mutate is not None:
        mutate(p, x)
    err = np.full((n, 2), -1, dtype=np.int64) if err is None else err
    runs = [_Run(p, x, events, total, record, rec_start, record_states, err) for _ in range(2)]
    t = 0
    while t < total:
        n_min = min(int(rng.integers(3, 21)), total - t)
        basal = rng.uniform(0.0, 0.03, n)
        bolus = np.where(rng.random(n) < 0.2, rng.uniform(0.0, 2.0, n), 0.0)
        bolus_min = rng.integers(0, 4, n).astype(np.int64)
        u_per_g = np.where(rng.random(n) < 0.7, rng.uniform(0.0, 0.2, n), 0.0)
        phi = np.where(np.arange(n) % 3 == 0, rng.uniform(0.0, 1.2, n), 0.0)
        si = np.where(np.arange(n) % 4 == 0, rng.uniform(0.5, 2.0, n), 1.0)
        carbs = np.where(rng.random(n) < 0.05, 15.0, 0.0)
        for run, kernel in zip(runs, (solver._advance_scalar, solver.advance), strict=True):
            run.step(kernel, t, n_min, substeps, basal, bolus, bolus_min, u_per_g, phi, si,
                     carbs)  # fmt: skip
        for name, ref in runs[0].arrays().items():
            assert_bits_equal(runs[1].arrays()[name], ref, f"{name} after minute {t + n_min}")
        t += n_min
    return runs[1]


@pytest.mark.parametrize("n", [1, 4, 13, 20, 21, 257])
def test_advance_equals_scalar_kernel_ragged_n(cohort, n):
    """Full blocks, padded blocks and a short ragged tail run one at a time."""
    run = _run_both(cohort, n, seed=n)
    assert (run.err[:, 0] < 0).all()
    assert run.stats[:, solver.S_N].min() == 600


def test_advance_equals_scalar_kernel_many_participants(cohort):
    run = _run_both(cohort, 300, seed=3, total=900, rec_start=0)
    assert run.meal[:, 0].sum() >= 0.0 and run.obs_announced.sum() >= 0.0
    assert np.isfinite(run.x).all()


def test_advance_equals_scalar_kernel_without_recording_and_substeps(cohort):
    _run_both(cohort, 45, seed=5, record=False, record_states=False, substeps=3, total=300)


@pytest.mark.parametrize("record", [False, True])
def test_advance_equals_scalar_kernel_non_finite_and_skipped(cohort, record):
    """Participants that turn non-finite mid-call stop there; the rest of the block goes on.

    Without recording a block is checked at the end of the call and computed again minute by
    minute when a lane is not finite; with recording it is checked every minute.
    """
    n = 40
    err = np.full((n, 2), -1, dtype=np.int64)
    err[5] = (12, 3)  # stopped in an earlier call: skipped, untouched

    def mutate(p, x):
        p[[2, 17, 18], m.P_P2U] = -40.0  # X grows like exp(40 t): overflows within minutes
        p[25, m.P_P2U] = -2.0  # overflows later, in a later call
        x[9, m.GT] = np.nan  # non-finite from the first minute

    run = _run_both(cohort, n, seed=11, total=900, err=err, mutate=mutate, record=record,
                    record_states=record)  # fmt: skip
    stopped = np.flatnonzero(run.err[:, 0] >= 0)
    assert stopped.tolist() == [2, 5, 9, 17, 18, 25]
    assert run.err[5].tolist() == [12, 3]
    assert run.err[9].tolist() == [1, m.GP]  # Gt feeds Gp, the first non-finite state
    assert (run.err[[2, 17, 18, 25], 1] >= 0).all()
    assert run.err[25, 0] > run.err[2, 0]
    alive = np.setdiff1d(np.arange(n), stopped)
    assert np.isfinite(run.x[alive]).all()


def test_simulate_unchanged_by_the_lanes(monkeypatch):
    """End to end: the engine with the lane kernel equals the engine with the scalar one."""
    from isletsim.engine import simulate

    table = load_cohort()
    table = table.iloc[np.arange(45) % len(table)].copy()
    table.index = [f"p{i}" for i in range(len(table))]
    rng = np.random.default_rng(2)
    phi = np.where(np.arange(45) % 2 == 0, rng.uniform(0.1, 1.0, 45), 0.0)
    si = rng.uniform(0.6, 1.6, 45)
    kw = {"days": 1, "meals": "07:00=45,12:00=70,18:00=80", "graft_fraction": phi,
          "insulin_sensitivity": si, "record_states": True}  # fmt: skip
    new = simulate(table, **kw)
    monkeypatch.setattr(solver, "advance", solver._advance_scalar)
    old = simulate(table, **kw)
    assert_bits_equal(new.final_state, old.final_state, "final_state")
    assert_bits_equal(new.stats, old.stats, "stats")
    assert_bits_equal(new.states, old.states, "states")
    assert new.trace.keys() == old.trace.keys()
    for name, values in old.trace.items():
        assert_bits_equal(new.trace[name], values, name)
