"""Engine behaviour: eating, insulin delivery, batching, reproducibility, errors."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from isletsim.engine import NonFiniteStateError, simulate
from isletsim.meals import MealEvents
from isletsim.params import load_cohort, select_patients
from isletsim.therapy import BasalBolus, OpenLoop, Pump

MEALS = "07:00=45,12:00=70,18:00=80"


@pytest.fixture(scope="module")
def run():
    return simulate(["adult#001", "child#003", "adolescent#005"], 1, MEALS, BasalBolus())


def test_meals_are_eaten_at_5_g_per_min(run):
    carbs = run.trace["carbs_g"][0]
    assert carbs.sum() == pytest.approx(195.0)
    eating = np.flatnonzero(carbs[:600] > 0)
    assert eating.tolist() == list(range(420, 429))  # 45 g in 9 minutes from 07:00
    assert carbs.max() == 5.0


def test_basal_bolus_doses(run):
    cohort = load_cohort().loc["adult#001"]
    ins = run.trace["insulin_u"][0]
    basal = Pump.simglucose_insulet().deliver(np.array([cohort.u2ss * cohort.BW / 6000]))[0]
    assert ins[0] == pytest.approx(basal)
    # the 07:00 bolus is decided at 07:03 and runs for 3 minutes
    bolus_minutes = np.flatnonzero(ins > basal * 1.5)
    assert bolus_minutes[:3].tolist() == [423, 424, 425]
    assert (ins[423:426] - basal).sum() == pytest.approx(45 / cohort.CR, rel=1e-3)


def test_open_loop_meal_bolus_at_meal_start():
    r = simulate(["adult#002"], 1, MEALS, OpenLoop())
    cr = load_cohort().loc["adult#002", "CR"]
    ins = r.trace["insulin_u"][0]
    extra = ins - ins[0]
    assert np.flatnonzero(extra > 1e-12).tolist() == [420, 720, 1080]
    assert extra[720] == pytest.approx(70 / cr)


def test_batching_does_not_change_results(run):
    alone = simulate(["child#003"], 1, MEALS, BasalBolus())
    np.testing.assert_array_equal(alone.trace["glucose_sc_mg_dl"][0],
                                  run.trace["glucose_sc_mg_dl"][1])
    again = simulate(["adult#001", "child#003", "adolescent#005"], 1, MEALS, BasalBolus())
    for k, v in run.trace.items():
        np.testing.assert_array_equal(v, again.trace[k])


def test_many_participants_blocks_match_single():
    names = ["adult#004"] * 150  # more than one parallel block
    big = simulate(names, 0.5, MEALS, BasalBolus(), record=False)
    one = simulate(["adult#004"], 0.5, MEALS, BasalBolus(), record=False)
    assert np.all(big.final_state == one.final_state[0])


def test_rk4_step_converged(run):
    fine = simulate(["adult#001", "child#003", "adolescent#005"], 1, MEALS, BasalBolus(),
                    substeps=4)
    err = np.abs(fine.trace["glucose_sc_mg_dl"] - run.trace["glucose_sc_mg_dl"]).max()
    assert err < 0.5


def test_summary_matches_trace(run):
    s = run.summary()
    g = run.trace["glucose_sc_mg_dl"][:, 1:]
    np.testing.assert_allclose(s.mean_glucose_mg_dl, g.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(s.tir_70_180_pct,
                               100 * ((g >= 70) & (g <= 180)).mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(s.tbr_54_pct, 100 * (g < 54).mean(axis=1), rtol=1e-12)
    assert list(s.index) == run.participants


def test_no_history_unless_asked():
    r = simulate(["adult#001"], 1, MEALS, BasalBolus(), record=False)
    assert r.trace == {}
    with pytest.raises(ValueError, match="record=True"):
        r.to_frame()


def test_parquet_columns(run, tmp_path):
    path = tmp_path / "run.parquet"
    run.to_parquet(str(path))
    df = pq.read_table(path).to_pandas()
    assert {"participant", "minute", "glucose_plasma_mg_dl", "glucose_sc_mg_dl", "cgm_mg_dl",
            "carbs_g", "insulin_u"} <= set(df.columns)
    assert len(df) == 3 * 1441
    assert df.groupby("participant", observed=True).carbs_g.sum().tolist() == [195.0] * 3


def test_cgm_sampled_every_3_minutes_and_held(run):
    cgm = run.trace["cgm_mg_dl"][0]
    sc = run.trace["glucose_sc_mg_dl"][0]
    np.testing.assert_array_equal(cgm[3::3], np.clip(sc[3::3], 39, 600))
    np.testing.assert_array_equal(cgm[4::3], cgm[3:-1:3])


def test_non_finite_state_is_an_error():
    table = select_patients(["adult#001", "adult#002"])
    table.loc["adult#002", "kp1"] = 1e308  # finite, but glucose production overflows
    with pytest.raises(NonFiniteStateError, match=r"'adult#002'.*Gp.*minute 1\b"):
        simulate(table, 1, MEALS, BasalBolus())


def test_non_finite_parameter_is_named():
    table = select_patients(["adult#001", "adult#002"])
    table.loc["adult#002", "kp1"] = np.nan
    with pytest.raises(ValueError, match=r"'kp1'.*'adult#002'"):
        simulate(table, 1, MEALS, BasalBolus())


def test_negative_glucose_mass_does_not_freeze():
    """simglucose freezes a negative state forever; ours recovers (documented choice)."""
    table = select_patients(["adult#001"])
    table.loc["adult#001", "x0_ 4"] = -5.0  # plasma glucose mass below zero
    r = simulate(table, 1 / 24, "", OpenLoop(meal_bolus=False))
    gp = r.trace["glucose_plasma_mg_dl"][0]
    assert gp[0] < 0 and gp[-1] > 0
    assert np.all(np.diff(gp) > 0)


def test_explicit_meal_events():
    ev = MealEvents.from_lists([[(10, 20.0)], [(30, 10.0), (31, 10.0)]])
    r = simulate(["adult#001", "adult#001"], 0.05, ev, OpenLoop())
    assert r.trace["carbs_g"][0].sum() == 20.0
    assert np.flatnonzero(r.trace["carbs_g"][1]).tolist() == [30, 31, 32, 33]  # pile of 20 g


def test_bad_arguments():
    with pytest.raises(ValueError, match="substeps"):
        simulate(["adult#001"], 1, MEALS, substeps=0)
    with pytest.raises(ValueError, match="days"):
        simulate(["adult#001"], 0, MEALS)
    with pytest.raises(ValueError, match="participants"):
        simulate(["adult#001"], 1, MealEvents.from_lists([[], []]))


def test_repr(run):
    assert "3 participant(s)" in repr(run)
    assert isinstance(run.to_frame(), pd.DataFrame)


def test_thread_chunking_does_not_change_results():
    table = load_cohort().iloc[np.arange(600) % 30]
    one = simulate(table, 0.25, MEALS, BasalBolus(), record=False, threads=1)
    three = simulate(table, 0.25, MEALS, BasalBolus(), record=False, threads=3)
    np.testing.assert_array_equal(one.final_state, three.final_state)
    np.testing.assert_array_equal(one.stats, three.stats)


def test_progress_reaches_total():
    seen = []
    simulate(["adult#001"] * 600, 0.1, MEALS, threads=2, record=False,
             progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (144, 144)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.slow
def test_year_long_run_keeps_memory_linear_in_n():
    """A year of 60 participants without history: O(N) state, finite, plausible glucose."""
    import resource

    table = load_cohort().iloc[np.arange(60) % 30]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = simulate(table, 365, MEALS, BasalBolus(), record=False)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200  # a year of per-minute history would be ~1,260 MB
    s = r.summary()
    assert np.isfinite(r.final_state).all()
    assert (s.mean_glucose_mg_dl.between(40, 300)).all()  # child#004 averages ~65 mg/dL
    assert (s.min_glucose_mg_dl > 0).all()


def test_plot(run, tmp_path):
    fig = run.plot(["adult#001"])
    fig.savefig(tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="unknown participant"):
        run.plot(["adult#099"])


def test_daily_mean_glucose_and_hba1c():
    r = simulate(["adult#001", "child#004"], 3, MEALS, BasalBolus())
    g = r.trace["glucose_sc_mg_dl"][:, 1:]
    np.testing.assert_allclose(r.daily_mean_glucose, g.reshape(2, 3, 1440).mean(axis=2),
                               rtol=1e-12)
    a1c = r.hba1c()
    assert a1c.shape == (2, 3)
    # child#004 runs lower than adult#001, so its HbA1c is lower
    assert np.all(a1c[1] < a1c[0])
    no_history = simulate(["adult#001", "child#004"], 3, MEALS, BasalBolus(), record=False)
    np.testing.assert_array_equal(no_history.daily_mean_glucose, r.daily_mean_glucose)


def test_record_from_minute_keeps_the_tail_only(run):
    tail = simulate(["adult#001", "child#003", "adolescent#005"], 1, MEALS, BasalBolus(),
                    record_from_minute=1000)
    assert tail.first_minute == 1000
    for k, v in run.trace.items():
        np.testing.assert_array_equal(tail.trace[k], v[:, 1000:])
    assert tail.to_frame().minute.min() == 1000
    with pytest.raises(ValueError, match="record_from_minute"):
        simulate(["adult#001"], 1, MEALS, record_from_minute=2000)


@pytest.mark.parametrize(("first", "every"), [(0, 5), (1000, 5), (7, 4), (2, 1440), (1439, 7)])
def test_record_every_keeps_states_at_the_grid_and_sums_amounts(run, first, every):
    """States every ``every`` minutes from ``first``; amounts summed over [m, m + every);
    the 3-minute control period of BasalBolus does not divide the interval."""
    thin = simulate(["adult#001", "child#003", "adolescent#005"], 1, MEALS, BasalBolus(),
                    record_from_minute=first, record_every=every)  # fmt: skip
    minutes = np.arange(first, 1441, every)
    np.testing.assert_array_equal(thin.trace_minutes, minutes)
    for k, v in run.trace.items():
        if k in ("carbs_g", "insulin_u"):
            full = v[:, first:]
            pad = -full.shape[1] % every
            sums = np.pad(full, ((0, 0), (0, pad))).reshape(3, -1, every).sum(axis=2)
            np.testing.assert_allclose(thin.trace[k], sums, rtol=1e-12, atol=1e-15)
        else:
            np.testing.assert_array_equal(thin.trace[k], v[:, minutes])
    frame = thin.to_frame()
    assert frame.minute.tolist()[: len(minutes)] == minutes.tolist()
    assert thin.trace["insulin_u"].sum() == pytest.approx(run.trace["insulin_u"][:, first:].sum())


def test_record_columns_keeps_only_those(run):
    some = simulate(["adult#001", "child#003", "adolescent#005"], 1, MEALS, BasalBolus(),
                    record_every=5, record_columns=["cgm_mg_dl", "insulin_u"])  # fmt: skip
    assert set(some.trace) == {"cgm_mg_dl", "insulin_u"}
    np.testing.assert_array_equal(some.trace["cgm_mg_dl"], run.trace["cgm_mg_dl"][:, ::5])
    assert list(some.to_frame().columns) == ["participant", "minute", "cgm_mg_dl", "insulin_u"]
    for bad in (["glucose"], [], ["cgm_mg_dl", "cgm_mg_dl"]):
        with pytest.raises(ValueError, match="record_columns"):
            simulate(["adult#001"], 1, MEALS, record_columns=bad)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="record_every"):
            simulate(["adult#001"], 1, MEALS, record_every=bad)


class _TreatLows(BasalBolus):
    """Basal-bolus plus 15 g whenever true plasma glucose is below 80 mg/dL (test policy)."""

    def bind(self, patients):
        inner = super().bind(patients)
        seen = []

        class Bound:
            control_period_min = inner.control_period_min

            def decide(self, obs):
                seen.append(obs)
                act = inner.decide(obs)
                carbs = np.where(obs.glucose_plasma_mg_dl < 80, 15.0, 0.0)
                return type(act)(act.basal_u_per_min, act.bolus_u_per_min, act.bolus_minutes,
                                 act.meal_bolus_u_per_g, carbs)

        self.seen = seen
        return Bound()


def test_policy_carbs_are_eaten_but_not_bolused():
    policy = _TreatLows()
    r = simulate(["child#004"], 1, MEALS, policy)
    plain = simulate(["child#004"], 1, MEALS, BasalBolus())
    extra = r.trace["carbs_g"][0].sum() - 195.0
    assert extra > 0 and extra % 15 == 0
    assert r.trace["glucose_plasma_mg_dl"][0].min() > plain.trace["glucose_plasma_mg_dl"][0].min()
    # rescue carbs never trigger a meal bolus: boluses only follow the three meals
    basal = r.trace["insulin_u"][0, 0]
    bolus_starts = np.flatnonzero(np.diff((r.trace["insulin_u"][0] > basal * 1.5).astype(int)) == 1)
    assert len(bolus_starts) == 3
    obs = policy.seen[10]
    np.testing.assert_allclose(obs.glucose_plasma_mg_dl, r.trace["glucose_plasma_mg_dl"][:, obs.t])


def test_default_threads_from_environment(monkeypatch):
    from isletsim.engine import THREADS_ENV, default_threads

    monkeypatch.setenv(THREADS_ENV, "3")
    assert default_threads() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=THREADS_ENV):
            default_threads()
    monkeypatch.delenv(THREADS_ENV)
    assert default_threads() >= 1
