"""The compiled per-step paths give the same bits as the array (numpy) versions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy
from isletsim.therapy.graft import participant_streams, sample_graft
from isletsim.therapy.hypoglycemia import HypoglycemiaSelfCare
from isletsim.therapy.pump import Pump, deliver_rate


class _Flat(Therapy):
    control_period_min = 3

    def bind(self, patients: pd.DataFrame) -> BoundTherapy:
        return _BoundFlat(len(patients))


class _BoundFlat(BoundTherapy):
    control_period_min = 3

    def __init__(self, n: int) -> None:
        self.n = n

    def decide(self, obs: Observation) -> InsulinAction:
        z = np.zeros(self.n)
        return InsulinAction(z, z, np.full(self.n, 3, dtype=np.int64), z)


def test_self_care_step_matches_array_version() -> None:
    n = 40
    table = pd.DataFrame({"Name": [f"p{i}" for i in range(n)]})
    fast_policy = HypoglycemiaSelfCare(_Flat(), awareness="sample", seed=3)
    slow_policy = HypoglycemiaSelfCare(_Flat(), awareness="sample", seed=3)
    fast, slow = fast_policy.bind(table), slow_policy.bind(table)
    rng = np.random.default_rng(0)
    bg = np.full(n, 100.0)
    for t in range(0, 3 * 6000, 3):
        bg = np.clip(bg + rng.normal(0, 6, n), 25, 300)
        cgm = bg + rng.normal(0, 5, n)
        obs = Observation(t, cgm, np.zeros(n), bg)
        a = fast.decide(obs).carbs_g
        b = slow._decide_arrays(t, bg, cgm, obs).carbs_g  # type: ignore[attr-defined]
        np.testing.assert_array_equal(a, b)
    assert len(fast_policy.events) > 0
    pd.testing.assert_frame_equal(fast_policy.events, slow_policy.events, check_exact=True)
    pd.testing.assert_frame_equal(
        fast_policy.participants, slow_policy.participants, check_exact=True
    )


def test_graft_phi_of_day_matches_phi() -> None:
    base = sample_graft(
        "sc-islets", "full", np.linspace(50, 100, 6), "standard", participant_streams(2, 6),
        infusion_day=28,
    )  # fmt: skip
    days = np.arange(0, 400 * 1440, 7) / 1440
    courses = [base, base + base]
    courses += [dataclasses.replace(base, maturation_shape=s) for s in (0.5, 1.5, 3.0)]
    for course in courses:
        f = course._phi_of_day()
        assert f is not None
        fast = np.stack([f(d) for d in days], axis=1)
        ref = course.phi(days)
        np.testing.assert_array_equal(fast, ref)
        np.testing.assert_array_equal(np.signbit(fast), np.signbit(ref))


def test_deliver_rate_matches_pump() -> None:
    rng = np.random.default_rng(1)
    r = np.concatenate([rng.random(5000) * 0.1, rng.normal(0, 1e-3, 5000), [-0.0, 0.0, np.nan]])
    for pump in (Pump.simglucose_insulet(), Pump.ideal(), Pump(0.1, 6.0, False)):
        args = (float(pump.increment), float(pump.max_u_per_min), bool(pump.round_in_pmol))
        out = np.array([deliver_rate(v, *args) for v in r])
        np.testing.assert_array_equal(out, pump.deliver(r))
        np.testing.assert_array_equal(np.signbit(out), np.signbit(pump.deliver(r)))
