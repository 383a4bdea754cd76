"""parameter_matrix rejects non-finite and negative parameters, naming column and participant."""

from __future__ import annotations

import numpy as np
import pytest

from isletsim.model import uva_padova as m
from isletsim.params import load_cohort, select_patients


def _two():
    return select_patients(["adult#001", "adult#002"])


def test_shipped_cohorts_pass():
    for cohort in ("uva-padova-2008", "dalla-man-2007-normal"):
        p = m.parameter_matrix(load_cohort(cohort))
        assert np.isfinite(p).all() and (p >= 0).all()


@pytest.mark.parametrize("column", ["kp1", "BW", "Vg", "Vi", "kabs", "ke1", "u2ss", "p2u"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_base_parameter(column, bad):
    t = _two()
    t[column] = t[column].astype(float)
    t.loc["adult#002", column] = bad
    with pytest.raises(ValueError, match=rf"'{column}'.*'adult#002'.*non-finite"):
        m.parameter_matrix(t)


@pytest.mark.parametrize("column", m.PARAMS)
def test_every_base_parameter_may_not_be_negative(column):
    t = _two()
    t[column] = t[column].astype(float)
    t.loc["adult#001", column] = -0.5
    with pytest.raises(ValueError, match=rf"'{column}'.*'adult#001'.*negative"):
        m.parameter_matrix(t)


@pytest.mark.parametrize("column", ["sec_beta", "cp_vd_l", "glc_xi", "glc_alpha_native", "HEb"])
def test_optional_parameter_override_is_checked(column):
    t = _two()
    t[column] = [0.1, -1.0]
    with pytest.raises(ValueError, match=rf"'{column}'.*'adult#002'.*negative"):
        m.parameter_matrix(t)
    t[column] = [np.nan, 0.1]
    with pytest.raises(ValueError, match=rf"'{column}'.*'adult#001'.*non-finite"):
        m.parameter_matrix(t)


def test_zero_is_allowed_where_meaningful():
    t = _two()
    t["u2ss"] = 0.0  # a healthy subject has no basal infusion
    t["glc_alpha_native"] = 0.0
    p = m.parameter_matrix(t)
    assert (p[:, m.P_U2SS] == 0.0).all()


def test_zero_volume_is_reported_through_its_derived_parameter():
    t = _two()
    t.loc["adult#002", "Vi"] = 0.0
    with pytest.raises(ValueError, match=r"'inv_Vi' \(derived.*'adult#002'.*non-finite"):
        m.parameter_matrix(t)


def test_first_bad_column_is_named_and_others_listed():
    t = _two()
    t.loc["adult#001", "kabs"] = -1.0
    t.loc["adult#002", "Vg"] = np.nan
    with pytest.raises(ValueError, match=r"'kabs'.*further bad parameters: Vg") as info:
        m.parameter_matrix(t)
    assert "'adult#001'" in str(info.value)
