"""Hypoglycaemia awareness, 15-15 self-treatment and severe events (therapy.hypoglycemia)."""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from isletsim.engine import simulate
from isletsim.params import select_patients
from isletsim.params.toml_file import ParameterFileError
from isletsim.therapy import BasalBolus, OpenLoop
from isletsim.therapy.base import BoundTherapy, InsulinAction, Observation, Therapy
from isletsim.therapy.hypoglycemia import (
    EVENT_COLUMNS,
    HypoglycemiaParameters,
    HypoglycemiaSelfCare,
    step_uniforms,
)

MEALS = "07:00=45,12:00=70,18:00=80"
ADULTS = [f"adult#{i:03d}" for i in range(1, 11)]
PAR = HypoglycemiaParameters.packaged()
#: Noon (awake) and 03:00 (asleep) as minutes of day 0.
NOON, NIGHT = 720, 180


def _overdosed(names: list[str], factor: float = 3.0, replicates: int = 1) -> pd.DataFrame:
    """Patients whose carb ratio is divided by ``factor`` (meal boluses ``factor`` x too big)."""
    table = select_patients(names)
    table = pd.concat([table] * replicates, ignore_index=True)
    table["Name"] = [f"{n}/{i // len(names)}" for i, n in enumerate(table["Name"])]
    table["CR"] = table["CR"] / factor
    return table


class _Flat(Therapy):
    """A therapy that delivers nothing (for driving ``decide`` by hand)."""

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


def _bound(n: int, par: HypoglycemiaParameters, awareness="intact", seed: int = 0):
    policy = HypoglycemiaSelfCare(_Flat(), awareness=awareness, seed=seed, parameters=par)
    table = pd.DataFrame({"Name": [f"p{i}" for i in range(n)]})
    return policy, policy.bind(table)


def _obs(t: int, bg, cgm=None) -> Observation:
    bg = np.asarray(bg, dtype=float)
    cgm = bg if cgm is None else np.asarray(cgm, dtype=float)
    return Observation(t, cgm, np.zeros(bg.size), bg)


def _carbs(action: InsulinAction) -> np.ndarray:
    assert action.carbs_g is not None
    return np.asarray(action.carbs_g)


# ------------------------------------------------------------------------------ parameters
def test_packaged_parameters_are_sourced_and_calibrated():
    assert PAR.gold_iah_threshold == 4 and PAR.treatment_g == 15.0 and PAR.recheck_min == 15
    assert PAR.severe_below_mg_dl == 54.0
    assert PAR.h0_per_min > 0 and PAR.kappa_per_mg_dl >= 0 and PAR.r_iah >= 1
    assert (PAR.target_rate_impaired, PAR.target_rate_aware) == (2.8, 0.5)


def _copy(tmp_path: Path, old: str, new: str) -> Path:
    text = (resources.files("isletsim.params") / "hypoglycemia" / "self_care.toml").read_text()
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "key", "field"),
    [
        ("value = 0.7\n", "value = 1.5\n", "p_wake", "value"),
        ("value = 4\n", "value = 4.5\n", "gold_iah_threshold", "value"),
        ("value = 1380\n", "value = 1500\n", "sleep_start_min", "value"),
        ("value = 20.0\n", "value = -20.0\n", "assisted_g", "value"),
        ("value = 6.0\n", "value = 0.5\n", "r_iah", "value"),
        ("[rearm_mg_dl]\nvalue = 70.0\n", "[rearm_mg_dl]\nvalue = 50.0\n", "rearm_mg_dl", "value"),
        ("[p_wake]\nvalue = 0.7\n", "[p_wake]\nvalue = 0.7\ncolour = 1\n", "p_wake", "colour"),
        ("[p_wake]\n", "[p_wakeup]\n", "p_wakeup", None),
        ("[p_wake]\nvalue = 0.7\n", '[p_wake]\nvalue = "often"\n', "p_wake", "value"),
    ],
)  # fmt: skip
def test_bad_parameter_files_name_file_key_and_field(tmp_path, old, new, key, field):
    path = _copy(tmp_path, old, new)
    with pytest.raises(ParameterFileError) as err:
        HypoglycemiaParameters.from_file(path)
    msg = str(err.value)
    assert str(path) in msg and repr(key) in msg
    if field is not None:
        assert repr(field) in msg


def test_tag_must_agree_with_verified(tmp_path):
    path = _copy(tmp_path, 'tag = "V"\nverified = true', 'tag = "V"\nverified = false')
    with pytest.raises(ParameterFileError, match=r"gold_iah_threshold.*verified"):
        HypoglycemiaParameters.from_file(path)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="p_wake"):
        dataclasses.replace(PAR, p_wake=-0.1)
    with pytest.raises(ValueError, match="awareness"):
        HypoglycemiaSelfCare(_Flat(), awareness="sometimes")
    with pytest.raises(ValueError, match="1440 min"):
        HypoglycemiaSelfCare(OpenLoop())
    with pytest.raises(ValueError, match="seed"):
        HypoglycemiaSelfCare(_Flat(), seed=-1)
    with pytest.raises(ValueError, match=r"'p1'.*1\.\.7"):
        HypoglycemiaSelfCare(_Flat(), awareness={"p0": 2, "p1": 9}).bind(
            pd.DataFrame({"Name": ["p0", "p1"]})
        )
    with pytest.raises(ValueError, match="no Gold score"):
        HypoglycemiaSelfCare(_Flat(), awareness={"p0": 2}).bind(pd.DataFrame({"Name": ["p9"]}))


# ------------------------------------------------------------------------------ awareness
def test_awareness_traits():
    names = pd.DataFrame({"Name": [f"x{i}" for i in range(2000)]})
    sampled = HypoglycemiaSelfCare(_Flat(), seed=1)
    sampled.bind(names)
    traits = sampled.participants
    assert traits["impaired"].mean() == pytest.approx(PAR.iah_prevalence, abs=0.04)
    assert set(traits.loc[traits["impaired"], "gold_score"]) == {4.0, 5.0, 6.0, 7.0}
    assert set(traits.loc[~traits["impaired"], "gold_score"]) == {1.0, 2.0, 3.0}
    sym = traits["symptom_threshold_mg_dl"]
    assert (sym[traits["impaired"]] == 45.0).all() and (sym[~traits["impaired"]] == 58.0).all()
    factor = traits["carb_count_factor"]
    assert factor.mean() == pytest.approx(1.0, abs=0.03)
    assert factor.std() / factor.mean() == pytest.approx(PAR.carb_count_cv, abs=0.03)
    # a given score and a gold_score column decide awareness
    given = HypoglycemiaSelfCare(_Flat(), awareness={"a": 3, "b": 4})
    given.bind(pd.DataFrame({"Name": ["a", "b"]}))
    assert given.participants["impaired"].tolist() == [False, True]
    column = HypoglycemiaSelfCare(_Flat())
    column.bind(pd.DataFrame({"Name": ["a", "b"], "gold_score": [7, 1]}))
    assert column.participants["impaired"].tolist() == [True, False]


def test_same_seed_reproduces_other_seed_differs():
    names = pd.DataFrame({"Name": [f"x{i}" for i in range(200)]})
    tables = []
    for seed in (5, 5, 6):
        policy = HypoglycemiaSelfCare(_Flat(), seed=seed)
        policy.bind(names)
        tables.append(policy.participants)
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert (tables[0]["carb_count_factor"] != tables[2]["carb_count_factor"]).all()
    keys = np.arange(1000, dtype=np.uint64)
    u = step_uniforms(keys, 30, 1)
    assert ((u >= 0) & (u < 1)).all() and 0.45 < u.mean() < 0.55
    assert not np.array_equal(u, step_uniforms(keys, 33, 1))
    assert not np.array_equal(u, step_uniforms(keys, 30, 2))


# ------------------------------------------------------------------------------ 15-15 rule
def test_fifteen_fifteen_rule_awake():
    par = dataclasses.replace(PAR, h0_per_min=0.0, carb_count_cv=0.0)
    policy, bound = _bound(3, par)
    # p0 feels 50 mg/dL; p1 (62) does not; p2 is low but CGM is ignored while awake symptoms
    carbs = _carbs(bound.decide(_obs(NOON, [50.0, 62.0, 57.0])))
    np.testing.assert_allclose(carbs, [15.0, 0.0, 15.0])
    # before the re-check nothing more, even if still low
    np.testing.assert_allclose(_carbs(bound.decide(_obs(NOON + 3, [48.0, 62.0, 50.0]))), 0.0)
    # at the re-check (15 min): p0's CGM still < 70 -> another dose; p2's is 75 -> done
    carbs = _carbs(bound.decide(_obs(NOON + 15, [60.0, 62.0, 60.0], [65.0, 62.0, 75.0])))
    np.testing.assert_allclose(carbs, [15.0, 0.0, 0.0])
    # p2 is out of treatment: a new low is a new treatment at once
    carbs = _carbs(bound.decide(_obs(NOON + 18, [80.0, 80.0, 50.0], [80.0, 80.0, 52.0])))
    np.testing.assert_allclose(carbs, [0.0, 0.0, 15.0])
    assert policy.participants["self_treatments"].tolist() == [2, 0, 2]


def test_max_doses_and_counting_error():
    par = dataclasses.replace(PAR, h0_per_min=0.0, max_doses=2)
    policy, bound = _bound(1, par)
    factor = policy.participants["carb_count_factor"].iloc[0]
    doses = [_carbs(bound.decide(_obs(NOON + 15 * k, [50.0], [50.0])))[0] for k in range(4)]
    np.testing.assert_allclose(doses, [15.0 * factor, 15.0 * factor, 0.0, 15.0 * factor])
    assert factor != 1.0


def test_asleep_only_an_answered_alarm_wakes():
    never = dataclasses.replace(PAR, h0_per_min=0.0, p_wake=0.0)
    _, bound = _bound(4, never)
    # true glucose 40 (no symptoms asleep), CGM below the alarm: never answered
    for k in range(20):
        carbs = _carbs(bound.decide(_obs(NIGHT + 3 * k, [40.0] * 4, [50.0] * 4)))
        np.testing.assert_allclose(carbs, 0.0)
    always = dataclasses.replace(never, p_wake=1.0)
    policy, bound = _bound(4, always)
    carbs = _carbs(bound.decide(_obs(NIGHT, [40.0, 40.0, 40.0, 40.0], [50, 54, 56, 80])))
    np.testing.assert_array_equal(carbs > 0, [True, True, False, False])
    assert policy.participants["alarms"].tolist() == [1, 1, 0, 0]


# ------------------------------------------------------------------------------ severe events
def test_hazard_is_zero_at_or_above_54():
    huge = dataclasses.replace(PAR, h0_per_min=1e6)
    policy, bound = _bound(3, huge, awareness="impaired")
    for k in range(200):
        bound.decide(_obs(NIGHT + 3 * k, [54.0, 54.0001, 120.0], [80.0, 80.0, 80.0]))
    assert len(policy.events) == 0
    assert policy.participants["minutes_below_54"].sum() == 0.0
    bound.decide(_obs(NIGHT + 600, [53.99, 54.0, 120.0], [80.0, 80.0, 80.0]))
    assert policy.events["participant"].tolist() == ["p0"]


def test_event_record_and_treatment():
    sure = dataclasses.replace(PAR, h0_per_min=1e6)
    policy, bound = _bound(2, sure, awareness="impaired")
    # p0: 60 -> 50 (event, 20 g) -> 40 -> 45 -> 60 (episode over); p1 stays at 100
    series = [60.0, 50.0, 40.0, 45.0, 60.0]
    carbs = [_carbs(bound.decide(_obs(NIGHT + 3 * k, [g, 100.0], [90.0, 100.0])))
             for k, g in enumerate(series)]  # fmt: skip
    assert carbs[1][0] == pytest.approx(20.0) and carbs[1][1] == 0.0
    assert carbs[2][0] == 0.0 and carbs[3][0] == 0.0  # one event per episode
    events = policy.events
    assert list(events.columns) == list(EVENT_COLUMNS)
    row = events.iloc[0]
    assert len(events) == 1 and row["participant"] == "p0" and bool(row["impaired"])
    assert row["minute"] == NIGHT + 3 and row["episode_start_minute"] == NIGHT + 3
    assert row["nadir_mg_dl"] == 40.0 and row["duration_below_54_min"] == 9.0
    assert bool(row["complete"]) and row["assisted_g"] == 20.0
    # no re-arm before 70 mg/dL; after it a new episode can give a new event
    bound.decide(_obs(NIGHT + 15, [50.0, 100.0], [90.0, 100.0]))
    assert len(policy.events) == 1
    bound.decide(_obs(NIGHT + 18, [75.0, 100.0], [90.0, 100.0]))
    bound.decide(_obs(NIGHT + 21, [50.0, 100.0], [90.0, 100.0]))
    events = policy.events
    assert len(events) == 2 and not bool(events.iloc[1]["complete"])
    assert events.iloc[1]["duration_below_54_min"] == 3.0


def test_event_probability_follows_the_hazard():
    par = dataclasses.replace(PAR, h0_per_min=0.002, kappa_per_mg_dl=0.1, r_iah=4.0)
    for awareness, r in (("intact", 1.0), ("impaired", 4.0)):
        policy, bound = _bound(10000, par, awareness=awareness)
        bound.decide(_obs(NIGHT, np.full(10000, 44.0), np.full(10000, 90.0)))
        expected = -np.expm1(-0.002 * r * np.exp(0.1 * 10.0) * 3)
        observed = len(policy.events) / 10000
        assert observed == pytest.approx(expected, abs=4 * np.sqrt(expected / 10000))


# ------------------------------------------------------------------------------ in the engine
def test_self_treatment_raises_the_nadir():
    table = _overdosed(["adult#001", "adult#009"], factor=3.0)
    par = dataclasses.replace(PAR, h0_per_min=0.0)
    alone = simulate(table, 1, MEALS, BasalBolus())
    cared = simulate(table, 1, MEALS, HypoglycemiaSelfCare(BasalBolus(), "intact", parameters=par))
    nadir_alone = alone.trace["glucose_plasma_mg_dl"].min(axis=1)
    nadir_cared = cared.trace["glucose_plasma_mg_dl"].min(axis=1)
    assert (nadir_alone < 50).all()
    assert (nadir_cared > nadir_alone + 5).all()
    assert (cared.trace["carbs_g"].sum(axis=1) > alone.trace["carbs_g"].sum(axis=1) + 15).all()


def test_impaired_awareness_more_time_below_54_and_more_events():
    table = _overdosed(ADULTS, factor=3.0, replicates=3)
    par = dataclasses.replace(PAR, h0_per_min=2e-3)
    out = {}
    for aw in ("impaired", "intact"):
        policy = HypoglycemiaSelfCare(BasalBolus(), aw, seed=11, parameters=par)
        simulate(table, 1, MEALS, policy, record=False)
        out[aw] = (policy.participants["minutes_below_54"].sum(), len(policy.events))
    assert out["impaired"][0] > 1.2 * out["intact"][0]
    assert out["impaired"][1] > 2 * max(out["intact"][1], 1)


def test_batch_independence_and_reproducibility():
    par = dataclasses.replace(PAR, h0_per_min=5e-3)
    focus = _overdosed(["adult#009"], factor=3.0)
    batch = pd.concat([_overdosed(["adult#001", "adult#002"], 3.0), focus], ignore_index=True)
    batch["Name"] = ["a/0", "b/0", "adult#009/0"]
    runs = []
    for table in (focus, batch, focus):
        policy = HypoglycemiaSelfCare(BasalBolus(), seed=4, parameters=par, awareness="impaired")
        simulate(table, 2, MEALS, policy, record=False)
        ev = policy.events
        runs.append((ev[ev["participant"] == "adult#009/0"].reset_index(drop=True),
                     policy.participants.loc[["adult#009/0"]]))  # fmt: skip
    assert len(runs[0][0]) >= 1
    for events, traits in runs[1:]:
        pd.testing.assert_frame_equal(events, runs[0][0])
        pd.testing.assert_frame_equal(traits, runs[0][1])
    other = HypoglycemiaSelfCare(BasalBolus(), seed=99, parameters=par, awareness="impaired")
    simulate(focus, 2, MEALS, other, record=False)
    assert not other.participants.equals(runs[0][1])
