"""Random daily meals with habits (simglucose 0.2.11 RandomScenario pattern) and scenario files."""

from __future__ import annotations

import dataclasses
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm, truncnorm

from isletsim import scenarios
from isletsim.engine import simulate
from isletsim.meals import DailyMeals, MealEvents
from isletsim.params import load_cohort
from isletsim.params.toml_file import ParameterFileError
from isletsim.scenarios import (
    CandidateMeal,
    HabitSpread,
    MealPattern,
    ScenarioFileError,
    clock_minutes,
    draw_meals,
    load_scenario,
    random_meals,
    sample_habits,
    write_scenario,
)
from isletsim.therapy.graft import participant_streams

PATTERN = MealPattern.load()
NO_HABITS = dataclasses.replace(PATTERN, habits=HabitSpread())


def _draws(pattern: MealPattern, n: int, days: int, seed: int):
    streams = participant_streams(seed, n)
    habits = sample_habits(pattern, streams)
    return habits, draw_meals(habits, days, streams)


def _ratio_mean_and_se(values: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Mean over eaten meals and its standard error, clustered by participant (axis 0)."""
    y = np.where(mask, values, 0.0).sum(axis=1)
    c = mask.sum(axis=1).astype(float)
    r = y.sum() / c.sum()
    n = len(y)
    se = math.sqrt(((y - r * c) ** 2).sum() * n / (n - 1)) / c.sum()
    return r, se


def _tn_mean(mean, sd, lo, hi):
    """Mean of N(mean, sd) truncated to [lo, hi] (scipy, independent of the module)."""
    return truncnorm.mean((lo - mean) / sd, (hi - mean) / sd, loc=mean, scale=sd)


# ---------------------------------------------------------------------------- the pattern
def test_default_pattern_is_simglucose_random_scenario():
    # simglucose 0.2.11 simglucose/simulation/scenario_gen.py RandomScenario.create_scenario
    assert PATTERN.name == "simglucose-random"
    assert PATTERN.column("probability").tolist() == [0.95, 0.3, 0.95, 0.3, 0.95, 0.3]
    assert PATTERN.column("earliest").tolist() == [h * 60 for h in (5, 9, 10, 14, 16, 20)]
    assert PATTERN.column("latest").tolist() == [h * 60 for h in (9, 10, 14, 16, 20, 23)]
    assert PATTERN.column("time_mean").tolist() == [h * 60 for h in (7, 9.5, 12, 15, 18, 21.5)]
    assert PATTERN.column("time_sd").tolist() == [60, 30, 60, 30, 60, 30]
    assert PATTERN.column("size_mean").tolist() == [45, 10, 70, 10, 80, 10]
    assert PATTERN.column("size_sd").tolist() == [10, 5, 10, 5, 10, 5]
    assert PATTERN.column("size_min").tolist() == [0] * 6
    assert np.isinf(PATTERN.column("size_max")).all()
    table = PATTERN.sources_table()
    assert table.loc["meals.lunch.size_mean", "source"].startswith("simglucose 0.2.11")
    assert (table.loc[table["tag"] == "U"].index.str.startswith("habits.")).all()
    assert len(table.loc[table["tag"] == "U"]) == 3


def test_candidate_meal_validation():
    ok = {"name": "x", "probability": 0.5, "time_mean": 420.0, "time_sd": 30.0,
          "earliest": 360, "latest": 480, "size_mean": 20.0, "size_sd": 5.0}  # fmt: skip
    CandidateMeal(**ok)
    for key, bad in [("probability", 1.2), ("time_mean", 500.0), ("latest", 1440),
                     ("size_mean", -1.0), ("size_sd", -2.0), ("time_sd", math.nan)]:  # fmt: skip
        with pytest.raises(ValueError, match=key):
            CandidateMeal(**{**ok, key: bad})
    with pytest.raises(ValueError, match="unique"):
        MealPattern("p", (CandidateMeal(**ok), CandidateMeal(**ok)))
    with pytest.raises(ValueError, match="size_scale_cv"):
        HabitSpread(size_scale_cv=-0.1)


# ---------------------------------------------------------------------------- statistics
def test_daily_statistics_match_pattern_without_habits():
    n, days = 400, 50
    habits, d = _draws(NO_HABITS, n, days, seed=11)
    assert np.all(habits.size_scale == 1.0) and np.all(habits.time_offset == 0.0)
    clock = d.minute % 1440
    for k, m in enumerate(NO_HABITS.meals):
        eaten = d.eaten[..., k]
        p_hat = eaten.mean()
        assert abs(p_hat - m.probability) < 4 * math.sqrt(m.probability * (1 - m.probability)
                                                          / eaten.size)  # fmt: skip
        t = clock[..., k][eaten]
        assert t.min() >= m.earliest and t.max() <= m.latest
        t_mean = _tn_mean(m.time_mean, m.time_sd, m.earliest, m.latest)
        t_sd = truncnorm.std((m.earliest - m.time_mean) / m.time_sd,
                             (m.latest - m.time_mean) / m.time_sd, scale=m.time_sd)  # fmt: skip
        assert abs(t.mean() - t_mean) < 4 * t_sd / math.sqrt(t.size), m.name
        assert abs(t.std() / t_sd - 1) < 0.05, m.name
        g = d.grams[..., k][eaten]
        assert g.min() >= 0.0
        g_mean = _tn_mean(m.size_mean, m.size_sd, m.size_min, math.inf)
        g_sd = truncnorm.std(-m.size_mean / m.size_sd, math.inf, scale=m.size_sd)
        assert abs(g.mean() - g_mean) < 4 * g_sd / math.sqrt(g.size), m.name
        assert abs(g.std() / g_sd - 1) < 0.05, m.name


def _tn_mean_closed_form(mean, sd, lo, hi):
    """Vectorised mean of a truncated normal, textbook formula (sd > 0)."""
    a, b = (lo - mean) / sd, (hi - mean) / sd
    return mean + sd * (norm.pdf(a) - norm.pdf(b)) / (norm.cdf(b) - norm.cdf(a))


def _mixture_mean(f, z_sd: float = 1.0) -> float:
    """E f(Z), Z ~ N(0, z_sd), by the trapezoid rule on a fine grid."""
    z = np.linspace(-8.0, 8.0, 8001)
    w = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    return float(np.trapezoid(f(z_sd * z) * w, z))


def test_population_statistics_with_habits():
    n, days = 1500, 12
    _, d = _draws(PATTERN, n, days, seed=5)
    h = PATTERN.habits
    offset_sd = math.hypot(h.time_shift_sd, h.meal_time_sd)
    sigma = math.sqrt(math.log1p(h.size_scale_cv**2))
    clock = (d.minute % 1440).astype(float)
    for k, m in enumerate(PATTERN.meals):
        eaten = d.eaten[..., k]
        t_hat, t_se = _ratio_mean_and_se(clock[..., k], eaten)
        t_exp = _mixture_mean(
            lambda s, m=m: _tn_mean_closed_form(
                np.clip(m.time_mean + s, m.earliest, m.latest), m.time_sd, m.earliest, m.latest
            ),
            offset_sd,
        )
        assert abs(t_hat - t_exp) < 4 * t_se, (m.name, t_hat, t_exp, t_se)
        g_hat, g_se = _ratio_mean_and_se(d.grams[..., k], eaten)
        g_exp = _mixture_mean(
            lambda z, m=m: _tn_mean_closed_form(
                np.exp(sigma * z - sigma**2 / 2) * m.size_mean,
                np.exp(sigma * z - sigma**2 / 2) * m.size_sd, m.size_min, math.inf),
        )  # fmt: skip
        assert abs(g_hat - g_exp) < 4 * g_se, (m.name, g_hat, g_exp, g_se)


def test_habit_statistics():
    n = 6000
    habits = sample_habits(PATTERN, participant_streams(3, n))
    h = PATTERN.habits
    assert habits.time_offset.shape == (n, 6) and habits.time_shift.shape == (n,)
    scale = habits.size_scale
    assert abs(scale.mean() - 1.0) < 4 * scale.std() / math.sqrt(n)
    assert abs(scale.std() / h.size_scale_cv - 1) < 0.06
    assert abs(np.log(scale).mean() + math.log1p(h.size_scale_cv**2) / 2) < 4 * 0.2 / math.sqrt(n)
    assert abs(habits.time_shift.mean()) < 4 * h.time_shift_sd / math.sqrt(n)
    assert abs(habits.time_shift.std() / h.time_shift_sd - 1) < 0.06
    assert abs(habits.time_offset.std() / h.meal_time_sd - 1) < 0.03
    usual = habits.usual_time
    assert (usual >= PATTERN.column("earliest")).all() and (usual <= PATTERN.column("latest")).all()


def test_habits_persist_from_day_to_day():
    def half_correlation(pattern: MealPattern) -> tuple[float, float]:
        _, d = _draws(pattern, 300, 40, seed=8)
        lunch = d.names.index("lunch")
        t, g = (d.minute % 1440)[..., lunch].astype(float), d.grams[..., lunch]
        r_t = np.corrcoef(t[:, :20].mean(1), t[:, 20:].mean(1))[0, 1]
        r_g = np.corrcoef(g[:, :20].mean(1), g[:, 20:].mean(1))[0, 1]
        return r_t, r_g

    r_t, r_g = half_correlation(PATTERN)
    assert r_t > 0.5 and r_g > 0.5  # a person's usual lunch time and portion
    r_t0, r_g0 = half_correlation(NO_HABITS)
    assert abs(r_t0) < 0.2 and abs(r_g0) < 0.2


# ---------------------------------------------------------------------------- events
def test_events_sorted_within_days_and_windows():
    streams = participant_streams(21, 40)
    habits = sample_habits(PATTERN, streams)
    ev = random_meals(habits, 3, streams, start_day=4)
    assert ev.ptr.shape == (41,) and ev.ptr[-1] == ev.minute.size == ev.grams.size
    assert ev.minute.dtype == np.int64
    for i in range(40):
        m = ev.minute[ev.ptr[i] : ev.ptr[i + 1]]
        assert np.all(np.diff(m) >= 0)
        assert 3 <= m.size <= 18
    assert ev.minute.min() >= 4 * 1440 and ev.minute.max() < 7 * 1440
    clock = ev.minute % 1440
    assert clock.min() >= 5 * 60 and clock.max() <= 23 * 60
    assert (ev.grams >= 0).all()


def test_same_seed_same_meals_and_different_seed_different():
    def meals(seed: int) -> MealEvents:
        s = participant_streams(seed, 10)
        return random_meals(sample_habits(PATTERN, s), 3, s)

    a, b, c = meals(42), meals(42), meals(43)
    assert np.array_equal(a.ptr, b.ptr)
    assert np.array_equal(a.minute, b.minute) and np.array_equal(a.grams, b.grams)
    assert a.minute.size != c.minute.size or not np.array_equal(a.grams, c.grams)


def test_participant_meals_do_not_depend_on_batching():
    def participant_3(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = participant_streams(2025, n)
        habits = sample_habits(PATTERN, s)
        ev = random_meals(habits, 4, s).slice(3, 4)
        return habits.time_offset[3], ev.minute, ev.grams

    small, big = participant_3(5), participant_3(50)
    for x, y in zip(small, big, strict=True):
        assert np.array_equal(x, y)
    # a batch that starts at participant 3
    s = participant_streams(2025, 2, start=3)
    ev = random_meals(sample_habits(PATTERN, s), 4, s).slice(0, 1)
    assert np.array_equal(ev.minute, small[1]) and np.array_equal(ev.grams, small[2])


def test_consecutive_calls_continue_the_streams():
    s1, s2 = participant_streams(9, 6), participant_streams(9, 6)
    h1, h2 = sample_habits(PATTERN, s1), sample_habits(PATTERN, s2)
    whole = random_meals(h1, 5, s1)
    first, second = random_meals(h2, 2, s2), random_meals(h2, 3, s2, start_day=2)
    for i in range(6):
        a = whole.slice(i, i + 1)
        b, c = first.slice(i, i + 1), second.slice(i, i + 1)
        assert np.array_equal(a.minute, np.concatenate([b.minute, c.minute]))
        assert np.array_equal(a.grams, np.concatenate([b.grams, c.grams]))


def test_common_random_numbers_across_patterns():
    # same streams, different size spread: same meal days and times, different grams
    bigger = dataclasses.replace(
        NO_HABITS,
        meals=tuple(dataclasses.replace(m, size_sd=2 * m.size_sd) for m in NO_HABITS.meals),
    )
    _, a = _draws(NO_HABITS, 5, 3, seed=1)
    _, b = _draws(bigger, 5, 3, seed=1)
    assert np.array_equal(a.eaten, b.eaten) and np.array_equal(a.minute, b.minute)
    assert not np.array_equal(a.grams, b.grams)


def test_bad_arguments():
    s = participant_streams(1, 3)
    habits = sample_habits(PATTERN, s)
    with pytest.raises(ValueError, match="3 participants"):
        random_meals(habits, 1, participant_streams(1, 4))
    with pytest.raises(ValueError, match="days"):
        random_meals(habits, -1, s)
    with pytest.raises(ValueError, match="start_day"):
        random_meals(habits, 1, s, start_day=-2)
    with pytest.raises(TypeError, match="Generator"):
        sample_habits(PATTERN, [np.random.RandomState(0)])
    with pytest.raises(ValueError, match="unknown meal pattern"):
        MealPattern.load("nope")
    assert random_meals(habits, 0, s).minute.size == 0
    assert random_meals(sample_habits(PATTERN, []), 2, []).ptr.tolist() == [0]


# ---------------------------------------------------------------------------- engine
def test_simulate_eats_exactly_the_drawn_grams():
    table = load_cohort().loc[["adult#001", "adolescent#003"]]
    s = participant_streams(7, 2)
    meals = random_meals(sample_habits(PATTERN, s), 2, s)
    run = simulate(table, 2, meals)
    eaten = run.trace["carbs_g"].sum(axis=1)
    drawn = np.add.reduceat(meals.grams, meals.ptr[:-1])
    assert np.all(np.diff(meals.ptr) > 0)
    np.testing.assert_allclose(eaten, drawn, rtol=1e-12)


# ---------------------------------------------------------------------------- scenario files
def test_scenario_round_trip_events(tmp_path: Path):
    s = participant_streams(4, 3)
    ev = random_meals(sample_habits(PATTERN, s), 3, s)
    path = write_scenario(tmp_path / "frozen.toml", ev, participant=1, name="frozen")
    back = load_scenario(path, n=2)
    assert isinstance(back, MealEvents)
    one = ev.slice(1, 2)
    assert back.ptr.tolist() == [0, one.minute.size, 2 * one.minute.size]
    assert np.array_equal(back.minute, np.tile(one.minute, 2))
    assert np.array_equal(back.grams, np.tile(one.grams, 2))  # floats read back exactly


def test_scenario_file_by_hand_and_daily(tmp_path: Path):
    path = tmp_path / "two_days.toml"
    path.write_text(
        'name = "two days"\n'
        '[[meal]]\nday = 1\ntime = "12:30"\ngrams = 60\n'
        "[[meal]]\nday = 0\ntime = 07:00:00\ngrams = 45.5\n"
    )
    ev = load_scenario(path)
    assert isinstance(ev, MealEvents)
    assert ev.ptr.tolist() == [0, 2]
    assert ev.minute.tolist() == [420, 1440 + 750] and ev.grams.tolist() == [45.5, 60.0]

    daily = DailyMeals.parse("18:00=80,07:00=45,12:00=70")
    back = load_scenario(write_scenario(tmp_path / "daily.toml", daily))
    assert back == daily


_GOOD_MEAL = '[[meal]]\nday = 0\ntime = "07:00"\ngrams = 45\n'


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ('[[meal]]\nday = 0\ntime = "07:00"\ngramz = 45\n', "meal[1].gramz", "45"),
        (_GOOD_MEAL + '[[meal]]\nday = 0\ntime = "08:00"\ngrams = -5\n', "meal[2].grams", "-5"),
        ('[[meal]]\nday = 0\ntime = "25:00"\ngrams = 45\n', "meal[1].time", "'25:00'"),
        ('[[daily]]\ntime = "07:60"\ngrams = 45\n', "daily[1].time", "'07:60'"),
        ('[[daily]]\ntime = "7am"\ngrams = 45\n', "daily[1].time", "'7am'"),
        ('[[meal]]\nday = -1\ntime = "07:00"\ngrams = 45\n', "meal[1].day", "-1"),
        ('[[meal]]\nday = 0\ntime = "07:00"\ngrams = "45"\n', "meal[1].grams", "'45'"),
        ('[[meal]]\nday = 0\ntime = "07:00"\ngrams = nan\n', "meal[1].grams", "nan"),
        ('[[meal]]\nday = 0\ntime = "07:00"\n', "meal[1].grams", None),
        ("meals = 3\n" + _GOOD_MEAL, "meals", "3"),
    ],
)
def test_bad_scenario_file_names_file_key_value(tmp_path: Path, text, key, value):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioFileError) as exc:
        load_scenario(path)
    msg = str(exc.value)
    assert str(path) in msg and repr(key) in msg, msg
    assert exc.value.key == key
    if value is not None:
        assert f"= {value}" in msg, msg


@pytest.mark.parametrize(
    "text",
    ['name = "nothing"\n', _GOOD_MEAL + '[[daily]]\ntime = "07:00"\ngrams = 45\n', "[[meal]\n"],
)
def test_bad_scenario_file_structure(tmp_path: Path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioFileError, match=str(path)):
        load_scenario(path)


# ---------------------------------------------------------------------------- pattern files
def _shipped_text() -> str:
    return (
        resources.files("isletsim.params").joinpath("meals", "simglucose_random.toml").read_text()
    )


def test_pattern_file_round_trip(tmp_path: Path):
    path = tmp_path / "copy.toml"
    path.write_text(_shipped_text())
    assert MealPattern.from_file(path) == PATTERN


@pytest.mark.parametrize(
    ("old", "new", "parameter", "value"),
    [
        ('time_mean = { value = "07:00"', 'time_mean = { value = "25:00"',
         "meals.breakfast.time_mean", "'25:00'"),
        ('latest = { value = "23:00"', 'latest = { value = "23:61"',
         "meals.evening_snack.latest", "'23:61'"),
        ("size_mean = { value = 70,", "size_mean = { value = -70,", "meals.lunch.size_mean", "-70"),
        ("size_sd = { value = 10,", "size_sd = { value = -10,", "meals.breakfast.size_sd", "-10"),
        ("size_min = { value = 0,", "size_min = { value = -1,", "meals.breakfast.size_min", "-1"),
        ("probability = { value = 0.95,", "probability = { value = 1.5,",
         "meals.breakfast.probability", "1.5"),
        ('time_mean = { value = "12:00"', 'time_mean = { value = "15:00"',
         "meals.lunch.time_mean", "'15:00'"),
        ("time_shift_sd = { value = 30,", "time_shift_sd = { value = -30,",
         "habits.time_shift_sd", "-30"),
        ("time_sd = { value = 60,", "time_sd = { value = 60, valeu = 3,",
         "meals.breakfast.time_sd", None),
        ("[habits]\n", "[habits]\nsize_scale_sd = { value = 1, unit = \"1\", source = \"x\", "
         "tag = \"I\", verified = false }\n", "habits.size_scale_sd", None),
        ("[meals.lunch]\n", "[meals.lunch]\nsize_median = { value = 1, unit = \"g\", "
         "source = \"x\", tag = \"I\", verified = false }\n", "meals.lunch.size_median", None),
    ],
)  # fmt: skip
def test_bad_pattern_file_names_file_key_value(tmp_path: Path, old, new, parameter, value):
    text = _shipped_text()
    assert old in text
    path = tmp_path / "pattern.toml"
    path.write_text(text.replace(old, new, 1))  # the first meal that has it
    with pytest.raises(ParameterFileError) as exc:
        MealPattern.from_file(path)
    msg = str(exc.value)
    assert str(path) in msg and repr(parameter) in msg, msg
    if value is not None:
        assert value in msg, msg


def test_pattern_file_unknown_table(tmp_path: Path):
    path = tmp_path / "pattern.toml"
    path.write_text(_shipped_text() + '\n[snacks]\nname = "x"\n')
    with pytest.raises(ParameterFileError, match=r"unknown key 'snacks'"):
        MealPattern.from_file(path)


def test_clock_minutes():
    assert PATTERN.sources["meals.breakfast.time_mean"].value == "07:00"
    assert clock_minutes("07:30") == 450 and clock_minutes("23:59") == 1439
    for bad in ("24:00", "25:00", "12:60", "7", 420):
        with pytest.raises(ValueError):
            clock_minutes(bad)


def test_blocks_of_days_give_the_same_meals(monkeypatch: pytest.MonkeyPatch):
    def meals() -> tuple[MealEvents, np.ndarray]:
        s = participant_streams(13, 7)
        habits = sample_habits(PATTERN, s)
        s2 = participant_streams(99, 7)
        return random_meals(habits, 9, s), draw_meals(habits, 9, s2).grams

    one_block, grams_one = meals()
    monkeypatch.setattr(scenarios, "_MAX_BLOCK_VALUES", 7 * 6 * 3 * 2)  # blocks of 2 days
    blocks, grams_blocks = meals()
    assert np.array_equal(one_block.ptr, blocks.ptr)
    assert np.array_equal(one_block.minute, blocks.minute)
    assert np.array_equal(one_block.grams, blocks.grams)
    assert np.array_equal(grams_one, grams_blocks)
