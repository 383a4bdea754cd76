"""Virtual adults: isletsim.population.sample_population and its parameter file."""

import numpy as np
import pandas as pd
import pytest

from isletsim.params import load_cohort
from isletsim.params.toml_file import ParameterFileError
from isletsim.population import (
    PARAM_FILE,
    SPEC_NAMES,
    TRAIT_COLUMNS,
    eligible_iah,
    intact_adults,
    load_population_spec,
    sample_population,
)
from isletsim.therapy.base import basal_u_per_min
from isletsim.therapy.regimens import derive_settings


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    return sample_population(4000, 11)


def test_same_seed_same_table():
    a, b = sample_population(50, 7), sample_population(50, 7)
    pd.testing.assert_frame_equal(a, b)
    c = sample_population(50, 8)
    assert not np.allclose(a["age_years"], c["age_years"])


def test_participant_does_not_depend_on_n():
    small, large = sample_population(5, 3), sample_population(40, 3)
    pd.testing.assert_frame_equal(small, large.iloc[:5])


def test_names_and_columns():
    pop = sample_population(12, 1, prefix="X")
    assert pop["Name"].tolist() == [f"X{i:04d}" for i in range(1, 13)]
    assert pop.index.tolist() == pop["Name"].tolist()
    for col, dtype in TRAIT_COLUMNS.items():
        assert str(pop[col].dtype) == dtype, col
    adults = set(load_cohort()["Name"][lambda s: s.str.startswith("adult")])
    assert set(pop["model_patient"]) <= adults
    assert sample_population(0, 1).empty


def test_distributions_in_range(big):
    p = load_population_spec()
    assert big["age_years"].between(p["age_min_years"], p["age_max_years"]).all()
    assert abs(big["age_years"].mean() - p["age_mean_years"]) < 1.5
    assert (big["diabetes_duration_years"] > 0).all()
    assert (big["diabetes_duration_years"] <= big["age_years"]).all()
    assert set(big["sex"]) == {"F", "M"}
    assert big["gold_score"].isin(range(1, 8)).all()
    assert abs((big["gold_score"] >= 4).mean() - p["iah_prevalence"]) < 0.03
    assert (big["severe_events_prior_year"] >= 0).all()
    assert set(big["therapy"]) == {"mdi", "pump", "aid"}
    assert abs((big["therapy"] == "aid").mean() - p["p_aid"]) < 0.03
    assert (big["fasting_cpeptide_pmol_l"] == 0).all()
    for col in ("cr_setting_factor", "cf_setting_factor", "basal_setting_factor"):
        assert big[col].between(p["factor_min"], p["factor_max"]).all()
    np.testing.assert_allclose(big["CR"], big["cr_optimal"] * big["cr_setting_factor"])
    np.testing.assert_allclose(big["CF"], big["cf_optimal"] * big["cf_setting_factor"])
    # mean prior-year rate by awareness: the Gold 1994 figures
    impaired = big["gold_score"] >= 4
    assert big.loc[impaired, "severe_events_prior_year"].mean() == pytest.approx(2.8, rel=0.2)
    assert big.loc[~impaired, "severe_events_prior_year"].mean() == pytest.approx(0.5, rel=0.2)


def test_selection_on_prior_events_enriches_over_insulinisation(big):
    eligible = eligible_iah(big)
    assert eligible.sum() > 100
    sel, rest = big[eligible], big[~eligible & (big["gold_score"] >= 4)]
    assert sel["hypo_propensity"].mean() > rest["hypo_propensity"].mean() + 0.3
    assert sel["basal_setting_factor"].mean() > rest["basal_setting_factor"].mean()
    assert sel["cr_setting_factor"].mean() < rest["cr_setting_factor"].mean()
    intact = big[intact_adults(big)]
    assert (intact["gold_score"] <= 3).all() and intact["age_years"].between(18, 65).all()


def test_basal_factor_reaches_derive_settings():
    pop = sample_population(6, 2)
    s = derive_settings(pop)
    np.testing.assert_allclose(
        s["basal_u_per_min"], basal_u_per_min(pop) * pop["basal_setting_factor"]
    )
    np.testing.assert_allclose(s["CR"], pop["CR"])
    plain = derive_settings(pop.drop(columns="basal_setting_factor"))
    np.testing.assert_allclose(plain["basal_u_per_min"], basal_u_per_min(pop))
    bad = pop.assign(basal_setting_factor=0.0)
    with pytest.raises(ValueError, match="basal_setting_factor"):
        derive_settings(bad)


def test_spec_mapping_overrides():
    pop = sample_population(300, 4, spec={"iah_prevalence": 1.0})
    assert (pop["gold_score"] >= 4).all()
    same = sample_population(300, 4, spec={"iah_prevalence": 1.0, "basal_log_sd": 0.0,
                                           "basal_log_mean": 0.0, "factor_min": 0.1})  # fmt: skip
    np.testing.assert_allclose(same["age_years"], pop["age_years"])


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"iah_prevalence": 1.5}, "iah_prevalence"),
        ({"age_sd_years": 0.0}, "age_sd_years"),
        ({"p_pump": 0.6, "p_aid": 0.6}, "p_aid"),
        ({"propensity_setting_correlation": 2.0}, "propensity_setting_correlation"),
        ({"factor_min": 3.0}, "factor_min"),
        ({"no_such_entry": 1.0}, "no_such_entry"),
        ({"age_mean_years": float("nan")}, "age_mean_years"),
    ],
)
def test_bad_spec_values_name_file_and_key(spec, key):
    with pytest.raises(ParameterFileError, match=rf"adults_t1d\.toml.*{key}"):
        sample_population(3, 1, spec=spec)


def _variant(tmp_path, old: str, new: str):
    from importlib import resources

    text = (resources.files("isletsim.params") / "population" / "adults_t1d.toml").read_text()
    assert old in text
    path = tmp_path / "variant.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_bad_file_names_file_and_key(tmp_path):
    path = _variant(tmp_path, "[p_male]\nvalue = 0.5", "[p_male]\nvalue = -0.5")
    with pytest.raises(ParameterFileError, match=r"variant\.toml.*p_male.*value"):
        sample_population(3, 1, spec=path)
    path = _variant(tmp_path, "[p_male]", "[p_males]")
    with pytest.raises(ParameterFileError, match=r"variant\.toml.*p_male"):
        load_population_spec(path)
    path = _variant(tmp_path, 'tag = "V"\nverified = true', 'tag = "V"\nverified = false')
    with pytest.raises(ParameterFileError, match=r"variant\.toml.*verified"):
        load_population_spec(path)


def test_packaged_file_loads_with_every_entry():
    spec = load_population_spec()
    assert tuple(spec) == SPEC_NAMES
    assert PARAM_FILE.endswith("adults_t1d.toml")


@pytest.mark.parametrize("bad", [{"n": -1}, {"n": 2.0}, {"seed": -1}])
def test_bad_arguments(bad):
    args = {"n": 3, "seed": 1} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        sample_population(**args)
