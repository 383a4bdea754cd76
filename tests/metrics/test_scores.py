"""Tests for isletsim.metrics.scores (beta-score: Ryan 2005; BETA-2: Forbes 2016 [U])."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isletsim.metrics import scores
from isletsim.metrics.scores import beta2_score, beta_score

BEST = {
    "fasting_glucose": 5.0,
    "hba1c_pct": 5.8,
    "insulin_u_kg_day": 0.0,
    "cpeptide_stimulated": 0.8,
}


def bs(**kw: float) -> float:
    return float(beta_score(**{**BEST, **kw}).iloc[0])


def test_beta_score_extremes_and_hand_example() -> None:
    assert bs() == 8
    assert (
        bs(fasting_glucose=9.0, hba1c_pct=8.0, insulin_u_kg_day=0.5, cpeptide_stimulated=0.2) == 1
    )
    # glucose 6.0 (1) + HbA1c 6.5 (1) + insulin 0.1 (1) + C-peptide 0.5 (2) = 5
    assert (
        bs(fasting_glucose=6.0, hba1c_pct=6.5, insulin_u_kg_day=0.1, cpeptide_stimulated=0.5) == 5
    )


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"fasting_glucose": 5.5}, 8),
        ({"fasting_glucose": 5.55}, 7),  # between printed bands -> 1 point
        ({"fasting_glucose": 5.6}, 7),
        ({"fasting_glucose": 6.9}, 7),
        ({"fasting_glucose": 7.0}, 6),
        ({"hba1c_pct": 6.1}, 8),
        ({"hba1c_pct": 6.2}, 7),
        ({"hba1c_pct": 6.95}, 7),
        ({"hba1c_pct": 7.0}, 6),
        ({"insulin_u_kg_day": 0.005}, 7),
        ({"insulin_u_kg_day": 0.01}, 7),
        ({"insulin_u_kg_day": 0.24}, 7),
        ({"insulin_u_kg_day": 0.25}, 6),
        ({"cpeptide_stimulated": 0.3}, 8),
        ({"cpeptide_stimulated": 0.29}, 7),
        ({"cpeptide_stimulated": 0.1}, 7),
        ({"cpeptide_stimulated": 0.09}, 0),  # absent C-peptide -> total 0
    ],
)
def test_beta_score_band_boundaries(kw: dict, expected: int) -> None:
    assert bs(**kw) == expected


def test_beta_score_oral_agent_and_fasting_rule() -> None:
    assert float(beta_score(**BEST, non_insulin_therapy=True).iloc[0]) == 7
    # fasting >= 0.3 counts as stimulated >= 0.3
    assert bs(cpeptide_stimulated=0.15, cpeptide_fasting=0.3) == 8
    assert bs(cpeptide_stimulated=np.nan, cpeptide_fasting=0.35) == 8
    assert math.isnan(bs(cpeptide_stimulated=np.nan, cpeptide_fasting=0.2))
    assert math.isnan(bs(hba1c_pct=np.nan))
    # known absent C-peptide gives 0 even if another input is missing
    assert bs(hba1c_pct=np.nan, cpeptide_stimulated=0.05) == 0


def test_beta_score_units() -> None:
    # 99 mg/dL = 5.50 mmol/L (2 points), 100 mg/dL = 5.55 mmol/L (1 point)
    out = beta_score(**{**BEST, "fasting_glucose": [99.0, 100.0]}, glucose_unit="mg/dL")
    assert out.tolist() == [8, 7]
    # 0.9 ng/mL = 0.298 nmol/L (< 0.3), 1.0 ng/mL = 0.331 nmol/L
    out = beta_score(**{**BEST, "cpeptide_stimulated": [0.9, 1.0]}, cpeptide_unit="ng/mL")
    assert out.tolist() == [7, 8]


def test_beta_score_dataframe_and_errors() -> None:
    df = pd.DataFrame([BEST, {**BEST, "hba1c_pct": 7.2}], index=["x", "y"])
    out = beta_score(df)
    assert out.name == "beta_score"
    assert list(out.index) == ["x", "y"]
    assert out.tolist() == [8, 6]
    with pytest.raises(ValueError, match="fasting_glucose"):
        beta_score(df.drop(columns="fasting_glucose"))
    with pytest.raises(ValueError, match="mg/dL given"):
        beta_score(**{**BEST, "fasting_glucose": 95.0})  # mg/dL passed as mmol/L
    with pytest.raises(ValueError, match="insulin_u_kg_day"):
        beta_score(**{**BEST, "insulin_u_kg_day": -0.1})
    with pytest.raises(ValueError, match="glucose_unit"):
        beta_score(**BEST, glucose_unit="g/L")  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(
    st.floats(3.0, 20.0),
    st.floats(4.0, 12.0),
    st.floats(0.0, 1.5),
    st.floats(0.0, 3.0),
    st.floats(0.0, 5.0),
)
def test_beta_score_range_and_monotone_in_glucose(g, a, i, c, dg) -> None:
    out = beta_score(
        fasting_glucose=[g, g + dg], hba1c_pct=a, insulin_u_kg_day=i, cpeptide_stimulated=c
    )
    assert out.between(0, 8).all()
    assert (out == out.round()).all()
    assert out.iloc[1] <= out.iloc[0]


def test_beta2_formula_and_caveat() -> None:
    assert scores.BETA2_FORMULA_VERIFIED is False
    assert beta2_score.formula_verified is False
    assert "formula U" in (beta2_score.__doc__ or "")
    kw = {
        "cpeptide_fasting": 0.5,
        "insulin_u_kg_day": 0.0,
        "fasting_glucose": 5.0,
        "hba1c_pct": 6.0,
    }
    assert beta2_score(**kw).iloc[0] == pytest.approx(1000 * math.sqrt(0.5) / 30)
    kw["insulin_u_kg_day"] = 0.2
    assert beta2_score(**kw).iloc[0] == pytest.approx(1000 * math.sqrt(0.4) / 30)


def test_beta2_edge_cases_and_units() -> None:
    out = beta2_score(
        cpeptide_fasting=[0.5, 0.5, 0.0, np.nan],
        insulin_u_kg_day=[1.0, 1.3, 0.0, 0.0],
        fasting_glucose=5.0,
        hba1c_pct=6.0,
    )
    assert out.iloc[:3].tolist() == [0.0, 0.0, 0.0]
    assert math.isnan(out.iloc[3])
    a = beta2_score(
        cpeptide_fasting=0.331, insulin_u_kg_day=0.1, fasting_glucose=6.0, hba1c_pct=6.5
    )
    b = beta2_score(
        cpeptide_fasting=1.0,
        insulin_u_kg_day=0.1,
        fasting_glucose=6.0 * 18.016,
        hba1c_pct=6.5,
        glucose_unit="mg/dL",
        cpeptide_unit="ng/mL",
    )
    assert a.iloc[0] == pytest.approx(b.iloc[0])
    with pytest.raises(ValueError, match="hba1c_pct"):
        beta2_score(cpeptide_fasting=0.5, insulin_u_kg_day=0.0, fasting_glucose=5.0)
    with pytest.raises(ValueError, match="cpeptide_fasting"):
        beta2_score(
            cpeptide_fasting=500.0, insulin_u_kg_day=0.0, fasting_glucose=5.0, hba1c_pct=6.0
        )  # pmol/L passed as nmol/L
