"""Tests for isletsim.metrics.hba1c (ADAG, Nathan 2008; GMI, Bergenstal 2018)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isletsim.metrics.hba1c import (
    estimated_average_glucose,
    gmi,
    gmi_mmol_mol,
    hba1c_from_mean_glucose,
)
from isletsim.units import hba1c_ngsp_to_ifcc, mmol_to_mg_dl

# ADAG published table (Nathan et al. Diabetes Care 2008;31:1473, Table): A1c % -> eAG mg/dL.
ADAG_TABLE = {5: 97, 6: 126, 7: 154, 8: 183, 9: 212, 10: 240, 11: 269, 12: 298}
# Bergenstal et al. Diabetes Care 2018;41:2275, Table: mean CGM glucose mg/dL -> GMI %.
GMI_TABLE = {100: 5.7, 125: 6.3, 150: 6.9, 175: 7.5, 200: 8.1, 250: 9.3, 300: 10.5}


@pytest.mark.parametrize(("a1c", "eag"), sorted(ADAG_TABLE.items()))
def test_eag_matches_published_adag_table(a1c: float, eag: int) -> None:
    # the table rounds half up (6% -> 125.5 -> 126)
    assert estimated_average_glucose(a1c) == pytest.approx(eag, abs=0.5 + 1e-9)


def test_eag_exact_formula() -> None:
    assert estimated_average_glucose(7.0) == pytest.approx(28.7 * 7 - 46.7)


@pytest.mark.parametrize(("mean", "gmi_pct"), sorted(GMI_TABLE.items()))
def test_gmi_matches_published_table(mean: float, gmi_pct: float) -> None:
    assert round(gmi(mean), 1) == pytest.approx(gmi_pct)


def test_gmi_150_is_6_9() -> None:
    assert gmi(150) == pytest.approx(3.31 + 0.02392 * 150)
    assert round(gmi(150), 1) == 6.9


def test_gmi_mmol_mol_published_value_and_consistency() -> None:
    # Bergenstal 2018 table: 150 mg/dL -> 52 mmol/mol.
    assert round(gmi_mmol_mol(150)) == 52
    x = np.linspace(70, 300, 47)
    np.testing.assert_allclose(gmi_mmol_mol(x), hba1c_ngsp_to_ifcc(gmi(x)), atol=0.1)


def test_hba1c_from_mean_glucose_inverts_adag() -> None:
    assert hba1c_from_mean_glucose(154.2) == pytest.approx(7.0)
    assert hba1c_from_mean_glucose(mmol_to_mg_dl(8.6)) == pytest.approx(
        (8.6 * 18.016 + 46.7) / 28.7
    )


@settings(max_examples=50)
@given(st.floats(min_value=4.0, max_value=20.0))
def test_roundtrip_property(a1c: float) -> None:
    assert hba1c_from_mean_glucose(estimated_average_glucose(a1c)) == pytest.approx(a1c)


@settings(max_examples=50)
@given(st.floats(min_value=40, max_value=400), st.floats(min_value=0.1, max_value=100))
def test_gmi_is_increasing(mean: float, delta: float) -> None:
    assert gmi(mean + delta) > gmi(mean)


def test_input_kinds_are_preserved() -> None:
    assert isinstance(gmi(150), float)
    assert isinstance(gmi(np.int64(150)), float)
    arr = gmi(np.array([100.0, 150.0]))
    assert isinstance(arr, np.ndarray)
    np.testing.assert_allclose(arr, [5.702, 6.898])
    assert isinstance(estimated_average_glucose([6, 7]), np.ndarray)
    s = pd.Series([6.0, 7.0], index=["p1", "p2"], name="a1c")
    out = estimated_average_glucose(s)
    assert isinstance(out, pd.Series)
    assert list(out.index) == ["p1", "p2"]
    assert out.name == "eag_mg_dl"
    assert gmi(pd.Series([150.0])).name == "gmi_pct"
    assert hba1c_from_mean_glucose(pd.Series([154.0])).name == "ea1c_pct"


def test_missing_values_propagate() -> None:
    out = gmi(np.array([150.0, np.nan]))
    assert np.isnan(out[1])
    assert not np.isnan(out[0])
    assert estimated_average_glucose(pd.Series([np.nan])).isna().all()


@pytest.mark.parametrize(
    ("func", "value", "match"),
    [
        (gmi, 8.3, "mmol/L"),  # mmol/L passed as mg/dL
        (gmi_mmol_mol, 8.3, "mmol/L"),
        (hba1c_from_mean_glucose, 7.5, "mmol/L"),
        (estimated_average_glucose, 53.0, "mmol/mol"),  # IFCC passed as %
        (gmi, -5.0, "mean_mg_dl"),
        (gmi, np.inf, "infinite"),
    ],
)
def test_implausible_units_raise(func, value, match) -> None:
    with pytest.raises(ValueError, match=match):
        func(value)


def test_non_numeric_raises() -> None:
    with pytest.raises(ValueError, match="hba1c_pct"):
        estimated_average_glucose("7")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mean_mg_dl"):
        gmi(pd.Series(["a", "b"]))
