"""Tests for isletsim.metrics.igls (Igls 1.0: Rickels 2018; Igls 2.0: Landstra 2021)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isletsim.metrics.igls import (
    Igls1Outcome,
    Igls2GraftFunction,
    Igls2Outcome,
    classify_igls1,
    classify_igls2,
    igls2_graft_function,
)

# A typical recipient: baseline HbA1c 8.0 %, 4 severe events/y, 0.6 U/kg/d, no C-peptide.
BASE1 = {
    "hba1c_pct_baseline": 8.0,
    "she_per_year_baseline": 4.0,
    "insulin_u_kg_day_baseline": 0.6,
    "cpeptide_stimulated_baseline": 0.0,
}
OPTIMAL1 = {
    "hba1c_pct": 6.0,
    "she_per_year": 0.0,
    "insulin_u_kg_day": 0.0,
    "cpeptide_stimulated": 1.5,
}


def igls1(**kw: float) -> str | float:
    args = {**BASE1, **OPTIMAL1, **kw}
    return classify_igls1(**args)["outcome"].iloc[0]


BASE2 = {
    "hba1c_pct_baseline": 8.0,
    "tir_pct_baseline": 50.0,
    "she_per_year_baseline": 4.0,
    "tbr54_pct_baseline": 3.0,
}
OPTIMAL2 = {"hba1c_pct": 6.0, "tir_pct": 90.0, "she_per_year": 0.0, "tbr54_pct": 0.0}


def igls2(**kw: float) -> str | float:
    args = {**BASE2, **OPTIMAL2, **kw}
    return classify_igls2(**args)["outcome"].iloc[0]


# ------------------------------------------------------------------ Igls 1.0


def test_igls1_four_rows() -> None:
    assert igls1() == Igls1Outcome.OPTIMAL
    assert igls1(insulin_u_kg_day=0.2, hba1c_pct=6.8) == Igls1Outcome.GOOD
    assert igls1(insulin_u_kg_day=0.5, hba1c_pct=7.8, she_per_year=1) == Igls1Outcome.MARGINAL
    assert igls1(insulin_u_kg_day=0.6, hba1c_pct=8.0, she_per_year=4) == Igls1Outcome.FAILURE


def test_igls1_hba1c_boundaries() -> None:
    assert igls1(hba1c_pct=6.5) == "optimal"  # <= 6.5
    assert igls1(hba1c_pct=6.6) == "good"  # no insulin, but > 6.5
    assert igls1(hba1c_pct=6.99) == "good"
    assert igls1(hba1c_pct=7.0) == "marginal"  # 7.0 is not < 7.0; SHE reduced
    assert igls1(hba1c_pct=7.0, she_per_year=4) == "failure"


def test_igls1_cpeptide_footnote_b_boundary() -> None:
    assert igls1(cpeptide_stimulated=0.5) == "failure"  # must be > 0.5 ng/mL
    assert igls1(cpeptide_stimulated=0.51) == "optimal"
    out = classify_igls1(
        **{**BASE1, **OPTIMAL1, "cpeptide_stimulated": [0.17, 0.18]}, cpeptide_unit="nmol/L"
    )
    assert list(out["outcome"]) == ["failure", "optimal"]


def test_igls1_cpeptide_must_exceed_baseline() -> None:
    assert igls1(cpeptide_stimulated=1.0, cpeptide_stimulated_baseline=1.0) == "failure"
    assert igls1(cpeptide_stimulated=1.0, cpeptide_stimulated_baseline=0.9) == "optimal"


def test_igls1_cpeptide_fasting_or_stimulated() -> None:
    args = {
        **BASE1,
        **OPTIMAL1,
        "cpeptide_stimulated": 0.2,
        "cpeptide_fasting": 0.8,
        "cpeptide_fasting_baseline": 0.0,
    }
    assert classify_igls1(**args)["outcome"].iloc[0] == "optimal"


def test_igls1_insulin_footnote_c() -> None:
    # < 50 % of baseline AND < 0.5 U/kg/d
    assert igls1(insulin_u_kg_day=0.29, hba1c_pct=6.8) == "good"
    assert igls1(insulin_u_kg_day=0.3, hba1c_pct=6.8) == "marginal"  # exactly 50 %
    big = {"insulin_u_kg_day_baseline": 1.2, "hba1c_pct": 6.8}
    assert igls1(insulin_u_kg_day=0.49, **big) == "good"
    assert igls1(insulin_u_kg_day=0.5, **big) == "marginal"  # < 50 % but not < 0.5


def test_igls1_any_insulin_or_oral_agent_excludes_optimal() -> None:
    assert igls1(insulin_u_kg_day=0.01) == "good"
    args = {**BASE1, **OPTIMAL1, "non_insulin_therapy": True}
    assert classify_igls1(**args)["outcome"].iloc[0] == "good"


def test_igls1_severe_hypo_excludes_good() -> None:
    assert igls1(she_per_year=1) == "marginal"
    assert igls1(she_per_year=4) == "failure"  # not < baseline
    assert igls1(she_per_year=1, she_per_year_baseline=0) == "failure"


def test_igls1_marginal_insulin_cell_is_not_a_requirement() -> None:
    # big insulin reduction but HbA1c >= 7: marginal, not failure (monotonicity)
    assert igls1(insulin_u_kg_day=0.1, hba1c_pct=7.5, she_per_year=0) == "marginal"


def test_igls1_hba1c_tolerance_for_marginal() -> None:
    kw = {**BASE1, **OPTIMAL1, "hba1c_pct": 8.1, "she_per_year": 1.0, "insulin_u_kg_day": 0.6}
    assert classify_igls1(**kw)["outcome"].iloc[0] == "failure"
    assert classify_igls1(**kw, hba1c_tolerance=0.2)["outcome"].iloc[0] == "marginal"
    with pytest.raises(ValueError, match="hba1c_tolerance"):
        classify_igls1(**kw, hba1c_tolerance=-0.1)


def test_igls1_missing_data_rules() -> None:
    out = classify_igls1(**{**BASE1, **OPTIMAL1, "cpeptide_stimulated": [1.5, np.nan]})
    assert out["outcome"].iloc[0] == "optimal"
    assert pd.isna(out["outcome"].iloc[1])
    assert list(out["evaluable"]) == [True, False]
    assert pd.isna(out["treatment_success"].iloc[1])
    # baseline insulin only matters for "good": optimal still decidable without it
    kw = {**BASE1, **OPTIMAL1, "insulin_u_kg_day_baseline": np.nan}
    assert classify_igls1(**kw)["outcome"].iloc[0] == "optimal"
    kw["insulin_u_kg_day"] = 0.1
    assert pd.isna(classify_igls1(**kw)["outcome"].iloc[0])


def test_igls1_dataframe_input_keeps_index_and_reports_criteria() -> None:
    df = pd.DataFrame(
        [{**BASE1, **OPTIMAL1}, {**BASE1, **OPTIMAL1, "hba1c_pct": 6.8, "insulin_u_kg_day": 0.2}],
        index=["p1", "p2"],
    )
    df["extra"] = "ignored"
    out = classify_igls1(df)
    assert list(out.index) == ["p1", "p2"]
    assert list(out["outcome"]) == ["optimal", "good"]
    assert out["treatment_success"].tolist() == [True, True]
    assert out["crit_optimal"].tolist() == [True, False]
    assert out["cpeptide_criterion"].tolist() == [True, True]
    assert out["outcome"].cat.ordered
    assert list(out["outcome"].cat.categories) == ["failure", "marginal", "good", "optimal"]


def test_enums() -> None:
    assert Igls1Outcome("good").treatment_success
    assert not Igls1Outcome.MARGINAL.treatment_success
    assert Igls2Outcome.OPTIMAL.rank > Igls2Outcome.GOOD.rank > Igls2Outcome.FAILURE.rank
    assert Igls2GraftFunction.from_rank(1) is Igls2GraftFunction.MARGINAL
    assert Igls1Outcome.FAILURE == "failure"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"hba1c_pct": 53.0}, "hba1c_pct"),  # mmol/mol given as %
        ({"insulin_u_kg_day": -0.1}, "insulin_u_kg_day"),
        ({"insulin_u_kg_day": 40.0}, "U/day"),  # U/day given as U/kg/day
        ({"she_per_year": -1.0}, "she_per_year"),
        ({"cpeptide_stimulated": -0.2}, "cpeptide_stimulated"),
    ],
)
def test_igls1_bad_values_raise(change: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        classify_igls1(**{**BASE1, **OPTIMAL1, **change})


def test_igls1_bad_inputs_raise() -> None:
    kw = {**BASE1, **OPTIMAL1}
    df = pd.DataFrame([kw]).drop(columns=["she_per_year_baseline"])
    with pytest.raises(ValueError, match="she_per_year_baseline"):
        classify_igls1(df)
    with pytest.raises(ValueError, match="not both"):
        classify_igls1(pd.DataFrame([kw]), hba1c_pct=6.0)
    with pytest.raises(ValueError, match="C-peptide"):
        classify_igls1(pd.DataFrame([kw]).drop(columns=["cpeptide_stimulated_baseline"]))
    with pytest.raises(ValueError, match="cpeptide_unit"):
        classify_igls1(**kw, cpeptide_unit="pmol/L")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="length"):
        classify_igls1(**{**kw, "hba1c_pct": [6.0, 6.1], "she_per_year": [0, 0, 0]})
    with pytest.raises(ValueError, match="non_insulin_therapy"):
        classify_igls1(**kw, non_insulin_therapy=[np.nan])


igls1_inputs = st.fixed_dictionaries(
    {
        "hba1c_pct": st.floats(5.0, 12.0),
        "hba1c_pct_baseline": st.floats(5.0, 12.0),
        "she_per_year": st.sampled_from([0.0, 1.0, 2.0, 5.0]),
        "she_per_year_baseline": st.sampled_from([0.0, 1.0, 3.0, 6.0]),
        "insulin_u_kg_day": st.sampled_from([0.0, 0.05, 0.2, 0.3, 0.49, 0.5, 0.8]),
        "insulin_u_kg_day_baseline": st.floats(0.2, 1.5),
        "cpeptide_stimulated": st.floats(0.0, 3.0),
        "cpeptide_stimulated_baseline": st.floats(0.0, 1.0),
    }
)


def _improve1(kw: dict, a1c_drop: float, ins_drop: float) -> dict:
    better = dict(kw)
    better["hba1c_pct"] = max(2.0, kw["hba1c_pct"] - a1c_drop)
    better["insulin_u_kg_day"] = max(0.0, kw["insulin_u_kg_day"] - ins_drop)
    better["she_per_year"] = 0.0 if kw["she_per_year"] <= 1 else kw["she_per_year"]
    return better


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(igls1_inputs, st.floats(0.0, 3.0), st.floats(0.0, 0.5)), min_size=1, max_size=30
    )
)
def test_igls1_improvement_never_worsens(cases: list) -> None:
    worse = pd.DataFrame([kw for kw, _, _ in cases])
    better = pd.DataFrame([_improve1(*case) for case in cases])
    before = classify_igls1(worse)["outcome"].cat.codes.to_numpy()
    after = classify_igls1(better)["outcome"].cat.codes.to_numpy()
    assert (after >= before).all()


# ------------------------------------------------------------------ Igls 2.0


def test_igls2_four_rows() -> None:
    assert igls2() == Igls2Outcome.OPTIMAL
    assert igls2(hba1c_pct=6.8, tir_pct=75, tbr54_pct=0.5) == "good"
    assert igls2(hba1c_pct=7.5, tir_pct=60, she_per_year=1, tbr54_pct=2) == "marginal"
    assert igls2(hba1c_pct=8.0, tir_pct=50, she_per_year=4, tbr54_pct=3) == "failure"


def test_igls2_boundaries() -> None:
    assert igls2(hba1c_pct=6.5) == "optimal"
    assert igls2(tir_pct=80.0) == "optimal"
    assert igls2(tir_pct=79.9) == "good"
    assert igls2(tbr54_pct=0.1) == "good"
    assert igls2(tir_pct=70.0) == "good"
    assert igls2(tir_pct=69.9) == "marginal"
    assert igls2(tbr54_pct=1.0) == "marginal"  # not < 1
    assert igls2(hba1c_pct=7.0) == "marginal"
    assert igls2(she_per_year=1) == "marginal"


def test_igls2_marginal_needs_every_column_better() -> None:
    bad = {"hba1c_pct": 7.5, "tir_pct": 60.0, "she_per_year": 1.0, "tbr54_pct": 2.0}
    assert igls2(**bad) == "marginal"
    assert igls2(**{**bad, "tir_pct": 50.0}) == "failure"  # TIR == baseline
    assert igls2(**{**bad, "tbr54_pct": 3.0}) == "failure"
    assert igls2(**{**bad, "hba1c_pct": 8.1}) == "failure"
    assert igls2(**{**bad, "she_per_year": 4.0}) == "failure"
    assert igls2(**{**bad, "hba1c_pct": 8.0}) == "marginal"  # <= baseline


def test_igls2_approx_baseline_tolerances() -> None:
    kw = {**BASE2, "hba1c_pct": 7.5, "tir_pct": 52.0, "she_per_year": 1.0, "tbr54_pct": 2.0}
    assert classify_igls2(**kw)["outcome"].iloc[0] == "marginal"
    assert classify_igls2(**kw, tir_tolerance=5.0)["outcome"].iloc[0] == "failure"
    kw.update(tir_pct=60.0, tbr54_pct=2.8)
    assert classify_igls2(**kw, tbr54_tolerance=0.5)["outcome"].iloc[0] == "failure"
    kw.update(tbr54_pct=2.0, hba1c_pct=8.2)
    assert classify_igls2(**kw)["outcome"].iloc[0] == "failure"
    assert classify_igls2(**kw, hba1c_tolerance=0.3)["outcome"].iloc[0] == "marginal"
    with pytest.raises(ValueError, match="tir_tolerance"):
        classify_igls2(**kw, tir_tolerance=-1.0)


def test_igls2_requires_cgm() -> None:
    kw = {**BASE2, **OPTIMAL2}
    del kw["tir_pct"]
    with pytest.raises(ValueError, match="tir_pct"):
        classify_igls2(**kw)
    with pytest.raises(ValueError, match="tbr54_pct"):
        classify_igls2(**{**BASE2, **OPTIMAL2, "tbr54_pct": 120.0})


def test_igls2_graft_function_column_only_with_inputs() -> None:
    assert "graft_function" not in classify_igls2(**BASE2, **OPTIMAL2).columns
    out = classify_igls2(
        **{k: [v, v] for k, v in {**BASE2, **OPTIMAL2}.items()},
        insulin_u_kg_day=[0.0, 0.1],
        cpeptide_stimulated=[0.2, 1.0],
    )
    assert list(out["graft_function"]) == ["optimal", "good"]


@pytest.mark.parametrize(
    ("stim", "fast", "unit", "expected"),
    [
        (0.51, np.nan, "ng/mL", "good"),
        (0.5, np.nan, "ng/mL", "marginal"),
        (0.3, np.nan, "ng/mL", "marginal"),
        (0.29, np.nan, "ng/mL", "failure"),
        (np.nan, 0.2, "ng/mL", "good"),
        (np.nan, 0.19, "ng/mL", "marginal"),
        (np.nan, 0.1, "ng/mL", "marginal"),
        (np.nan, 0.09, "ng/mL", "failure"),
        (0.17, np.nan, "nmol/L", "marginal"),
        (0.18, np.nan, "nmol/L", "good"),
        (0.10, np.nan, "nmol/L", "marginal"),
        (np.nan, 0.07, "nmol/L", "good"),
        (np.nan, 0.039, "nmol/L", "failure"),
        (0.2, 0.25, "ng/mL", "good"),  # the better of the two wins
        (np.nan, np.nan, "ng/mL", None),
    ],
)
def test_graft_function_cpeptide_thresholds(stim, fast, unit, expected) -> None:
    out = igls2_graft_function(
        insulin_u_kg_day=0.1, cpeptide_stimulated=stim, cpeptide_fasting=fast, cpeptide_unit=unit
    )
    value = out["graft_function"].iloc[0]
    if expected is None:
        assert pd.isna(value)
    else:
        assert value == expected


def test_graft_function_optimal_requires_no_therapy() -> None:
    out = igls2_graft_function(
        insulin_u_kg_day=[0.0, 0.0, 0.05],
        cpeptide_stimulated=[0.1, 0.1, 2.0],
        non_insulin_therapy=[False, True, False],
    )
    assert list(out["graft_function"]) == ["optimal", "failure", "good"]
    assert out["no_therapy"].tolist() == [True, False, False]


def test_graft_function_capped_by_treatment_outcome() -> None:
    out = igls2_graft_function(
        insulin_u_kg_day=[0.0, 0.2, 0.2, np.nan, 0.0],
        cpeptide_stimulated=[2.0, 2.0, 2.0, np.nan, 2.0],
        treatment_outcome=["good", "marginal", "failure", "failure", None],
    )
    assert list(out["graft_function"][:4]) == ["good", "marginal", "failure", "failure"]
    assert pd.isna(out["graft_function"].iloc[4])
    with pytest.raises(ValueError, match="treatment_outcome"):
        igls2_graft_function(insulin_u_kg_day=0, cpeptide_fasting=1, treatment_outcome=["great"])
    with pytest.raises(ValueError, match="C-peptide"):
        igls2_graft_function(insulin_u_kg_day=0)


igls2_inputs = st.fixed_dictionaries(
    {
        "hba1c_pct": st.floats(5.0, 12.0),
        "hba1c_pct_baseline": st.floats(5.0, 12.0),
        "tir_pct": st.floats(0.0, 100.0),
        "tir_pct_baseline": st.floats(0.0, 100.0),
        "she_per_year": st.sampled_from([0.0, 1.0, 3.0]),
        "she_per_year_baseline": st.sampled_from([0.0, 2.0, 5.0]),
        "tbr54_pct": st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]),
        "tbr54_pct_baseline": st.sampled_from([0.0, 1.0, 4.0]),
    }
)


def _improve2(kw: dict, a1c_drop: float, tir_gain: float) -> dict:
    better = dict(kw)
    better["hba1c_pct"] = max(2.0, kw["hba1c_pct"] - a1c_drop)
    better["tir_pct"] = min(100.0, kw["tir_pct"] + tir_gain)
    better["tbr54_pct"] = kw["tbr54_pct"] / 2
    return better


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(igls2_inputs, st.floats(0.0, 3.0), st.floats(0.0, 30.0)), min_size=1, max_size=30
    )
)
def test_igls2_improvement_never_worsens(cases: list) -> None:
    worse = pd.DataFrame([kw for kw, _, _ in cases])
    better = pd.DataFrame([_improve2(*case) for case in cases])
    before = classify_igls2(worse)["outcome"].cat.codes.to_numpy()
    after = classify_igls2(better)["outcome"].cat.codes.to_numpy()
    assert (after >= before).all()
