"""Tests for isletsim.metrics.endpoints (zimislecel: Reichman NEJM 2025; CIT-style [U])."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from isletsim.metrics.endpoints import (
    clopper_pearson,
    insulin_free_runs,
    insulin_independence,
    insulin_independence_cit,
    proportion_summary,
    zimislecel_primary,
    zimislecel_secondary,
)

SHE = "severe_hypoglycemia"
NO_EVENTS = pd.DataFrame({"id": pd.Series([], dtype=str), "day": [], "term": []})


def participants(**baselines: float) -> pd.DataFrame:
    return pd.DataFrame({"id": list(baselines), "baseline_hba1c": list(baselines.values())})


def visits(*rows: tuple[str, float, float]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["id", "day", "hba1c"])


def events(*rows: tuple[str, float, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["id", "day", "term"])


def daily(pid: str, doses: dict[int, float] | None = None, days=range(0, 366), default=0.0):
    doses = doses or {}
    return pd.DataFrame(
        {"id": pid, "day": list(days), "insulin_u": [doses.get(d, default) for d in days]}
    )


# ------------------------------------------------------------------ zimislecel primary


def test_primary_severe_event_window_is_inclusive_90_to_365() -> None:
    p = participants(a=8.0, b=8.0, c=8.0, d=8.0, e=8.0)
    v = visits(*[(i, 200, 6.5) for i in "abcde"])
    ev = events(
        ("a", 89, SHE),
        ("b", 90, SHE),
        ("c", 365, SHE),
        ("d", 366, SHE),
        ("e", 120, "hypoglycemia_level2"),
    )
    out = zimislecel_primary(p, v, ev).set_index("id")
    assert out["she_free"].to_dict() == {"a": True, "b": False, "c": False, "d": True, "e": True}
    assert out["responder"].to_dict() == out["she_free"].to_dict()
    assert out.loc["b", "first_she_day"] == 90
    assert out.loc["b", "n_she_in_window"] == 1


def test_primary_hba1c_rules() -> None:
    p = participants(a=7.5, b=7.9, c=8.5, d=7.9, e=8.1, f=6.8)
    v = visits(
        ("a", 200, 7.0),  # 7.0 is not < 7 and only 0.5 lower
        ("b", 200, 6.9),  # below 7 and a 1.0 drop
        ("c", 200, 7.5),  # drop of exactly 1.0 only
        ("d", 200, 7.0),  # drop of 0.9, not < 7
        ("e", 300, 7.1),  # 8.1 - 7.1 == 1.0 despite floating point
        ("f", 365, 6.9),  # < 7 though higher than baseline
    )
    out = zimislecel_primary(p, v, NO_EVENTS).set_index("id")
    assert out["hba1c_criterion"].to_dict() == {
        "a": False,
        "b": True,
        "c": True,
        "d": False,
        "e": True,
        "f": True,
    }
    assert out.loc["b", "qualifying_reason"] == "both"
    assert out.loc["c", "qualifying_reason"] == "decrease"
    assert out.loc["f", "qualifying_reason"] == "below_target"
    assert out.loc["a", "qualifying_reason"] is None
    assert out.loc["f", "first_qualifying_visit_day"] == 365


def test_primary_hba1c_window_and_first_visit() -> None:
    p = participants(a=8.0, b=8.0)
    v = visits(
        ("a", 179, 6.0),
        ("a", 366, 6.0),
        ("b", 179, 6.0),
        ("b", 250, 7.5),
        ("b", 300, 6.8),
        ("b", 180, np.nan),
        ("b", 330, 6.5),
    )
    out = zimislecel_primary(p, v, NO_EVENTS).set_index("id")
    assert not out.loc["a", "responder"]
    assert out.loc["a", "flag_no_hba1c_in_window"]
    assert out.loc["b", "first_qualifying_visit_day"] == 300
    assert out.loc["b", "first_qualifying_hba1c"] == 6.8
    assert out.loc["b", "n_hba1c_in_window"] == 3  # NaN visit is not a measurement


def test_primary_missing_data_rules() -> None:
    p = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "baseline_hba1c": [np.nan, np.nan, 8.0],
            "last_followup_day": [365, 365, 300],
        }
    )
    v = visits(("a", 200, 6.9), ("b", 200, 7.2), ("c", 200, 6.0))
    out = zimislecel_primary(p, v, NO_EVENTS).set_index("id")
    assert out["flag_missing_baseline_hba1c"].tolist() == [True, True, False]
    assert out["responder"].tolist() == [True, False, False]
    assert out.loc["c", "flag_incomplete_followup"]
    relaxed = zimislecel_primary(p, v, NO_EVENTS, require_complete_followup=False)
    assert relaxed["responder"].tolist() == [True, False, True]


def test_primary_output_shape() -> None:
    p = participants(z=8.0, y=8.0)
    out = zimislecel_primary(p, visits(("y", 200, 6.0)), NO_EVENTS)
    assert out["id"].tolist() == ["z", "y"]  # participants order, all participants
    assert out.columns[:2].tolist() == ["id", "responder"]
    assert out["responder"].dtype == bool


def test_primary_bad_inputs() -> None:
    p = participants(a=8.0)
    v = visits(("a", 200, 6.0))
    with pytest.raises(ValueError, match="baseline_hba1c"):
        zimislecel_primary(p.drop(columns="baseline_hba1c"), v, NO_EVENTS)
    with pytest.raises(ValueError, match="term"):
        zimislecel_primary(p, v, NO_EVENTS.drop(columns="term"))
    with pytest.raises(ValueError, match="ids not in participants"):
        zimislecel_primary(p, v, events(("zz", 100, SHE)))
    with pytest.raises(ValueError, match="mmol/mol"):
        zimislecel_primary(p, visits(("a", 200, 53.0)), NO_EVENTS)
    with pytest.raises(ValueError, match="duplicates"):
        zimislecel_primary(pd.concat([p, p]), v, NO_EVENTS)
    with pytest.raises(ValueError, match="day"):
        zimislecel_primary(p, visits(("a", np.nan, 6.0)), NO_EVENTS)
    with pytest.raises(ValueError, match="she_window"):
        zimislecel_primary(p, v, NO_EVENTS, she_window=(365, 90))


participant_case = st.tuples(
    st.lists(st.floats(5.0, 10.0), min_size=1, max_size=4),  # HbA1c values in the window
    st.floats(6.0, 10.0),  # baseline
    st.floats(0.0, 2.0),  # improvement applied to the twin
)


@settings(max_examples=10, deadline=None)
@given(st.lists(participant_case, min_size=1, max_size=15))
def test_primary_lower_hba1c_never_loses_a_responder(cases) -> None:
    # each case gives two participants: "aK" and its twin "bK" with every HbA1c lower
    base, rows = {}, []
    for k, (values, baseline, drop) in enumerate(cases):
        base[f"a{k}"] = base[f"b{k}"] = baseline
        for i, x in enumerate(values):
            rows += [(f"a{k}", 180 + 50 * i, x), (f"b{k}", 180 + 50 * i, max(2.0, x - drop))]
    out = zimislecel_primary(participants(**base), visits(*rows), NO_EVENTS).set_index("id")
    for k in range(len(cases)):
        assert out.loc[f"b{k}", "responder"] >= out.loc[f"a{k}", "responder"]


# ------------------------------------------------------------------ insulin independence


def test_fourteen_consecutive_days() -> None:
    ins = pd.concat(
        [
            daily("a", days=range(0, 14)),  # 14 insulin-free days
            daily("b", days=range(0, 13)),  # 13
            daily("c", {7: 2.0}, days=range(0, 20)),  # broken by insulin on day 7
            daily("d", days=[*range(0, 7), *range(8, 15)]),  # day 7 not recorded
        ]
    )
    out = insulin_independence(ins).set_index("id")
    assert out["insulin_independent"].to_dict() == {"a": True, "b": False, "c": False, "d": False}
    assert out.loc["a", "first_qualifying_start_day"] == 0
    assert out.loc["a", "first_qualifying_end_day"] == 13
    assert out.loc["c", "longest_run_days"] == 12
    assert insulin_independence(ins, min_consecutive_days=7)["insulin_independent"].all()


def test_insulin_runs_window_duplicates_and_missing_participants() -> None:
    ins = pd.concat(
        [
            daily("a", days=range(100, 130)),
            pd.DataFrame({"id": ["a", "a"], "day": [110, 110], "insulin_u": [0.0, 1.0]}),
        ]
    )
    runs = insulin_free_runs(ins)
    assert runs[["start_day", "end_day", "n_days"]].values.tolist() == [
        [100, 109, 10],
        [111, 129, 19],
    ]
    clipped = insulin_free_runs(ins, window=(120, 365))
    assert clipped["n_days"].tolist() == [10]
    p = pd.DataFrame({"id": ["a", "b"]})
    out = insulin_independence(ins, window=(111, 124), participants=p).set_index("id")
    assert out.loc["a", "insulin_independent"]
    assert out.loc["a", "n_days_recorded"] == 14
    assert not out.loc["b", "insulin_independent"]
    assert out.loc["b", "flag_no_insulin_data"]


def test_insulin_bad_inputs() -> None:
    with pytest.raises(ValueError, match="insulin_u"):
        insulin_independence(pd.DataFrame({"id": ["a"], "day": [1], "insulin_u": [-1.0]}))
    with pytest.raises(ValueError, match="whole study days"):
        insulin_independence(pd.DataFrame({"id": ["a"], "day": [1.5], "insulin_u": [0.0]}))
    with pytest.raises(ValueError, match="insulin_u"):
        insulin_independence(pd.DataFrame({"id": ["a"], "day": [1]}))
    with pytest.raises(ValueError, match="min_consecutive_days"):
        insulin_independence(daily("a"), min_consecutive_days=0)
    with pytest.raises(ValueError, match="ids not in participants"):
        insulin_independence(daily("a"), participants=pd.DataFrame({"id": ["b"]}))


def test_cit_style_conditions() -> None:
    ins = pd.concat([daily(i, {d: 10.0 for d in range(0, 100)}) for i in "abcd"])
    v = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "d"],
            "day": [200, 200, 200, 50, 200],  # d: good visit only while on insulin
            "hba1c": [6.5, 6.6, 6.0, 6.0, 7.5],
            "cpeptide_fasting": [0.5, 1.0, 0.4, 1.0, 0.2],
        }
    )
    out = insulin_independence_cit(ins, v).set_index("id")
    assert out["insulin_free_run"].all()
    assert out["insulin_independent"].to_dict() == {"a": True, "b": False, "c": False, "d": False}
    assert out.loc["a", "hba1c_visit_day"] == 200
    lenient = insulin_independence_cit(
        ins, v, hba1c_max=7.0, hba1c_max_inclusive=False, cpeptide_min=None
    ).set_index("id")
    assert lenient["insulin_independent"].to_dict() == {"a": True, "b": True, "c": True, "d": False}
    no_visit = insulin_independence_cit(ins, v[v["id"] != "c"]).set_index("id")
    assert no_visit.loc["c", "flag_no_visit_in_run"]
    with pytest.raises(ValueError, match="cpeptide_fasting"):
        insulin_independence_cit(ins, v.drop(columns="cpeptide_fasting"))


# ------------------------------------------------------------------ zimislecel secondary


def _secondary_cohort() -> tuple[pd.DataFrame, pd.DataFrame]:
    ins = pd.concat(
        [
            daily("whole", {d: 5.0 for d in range(0, 180)}),  # free from day 180
            daily("late", {d: 5.0 for d in range(0, 200)}),  # free from day 200
            daily("relapse", {d: 5.0 for d in range(300, 366)}),  # free 0-299, then insulin
            daily("gap", days=[d for d in range(0, 366) if d != 250]),  # day 250 unrecorded
            daily("never", default=8.0),
            daily("short", {d: 5.0 for d in range(0, 355)}),  # free days 355-365 only (11 d)
        ]
    )
    ids = ["whole", "late", "relapse", "gap", "never", "short", "nodata"]
    return ins, pd.DataFrame({"id": ids})


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ("entire_window", ["whole"]),
        ("through_end", ["whole", "late", "gap"]),
        ("any_run", ["whole", "late", "relapse", "gap"]),
    ],
)
def test_secondary_definitions(definition, expected) -> None:
    ins, p = _secondary_cohort()
    out = zimislecel_secondary(ins, p, definition=definition)
    assert out.loc[out["insulin_independent"], "id"].tolist() == expected
    assert (out["definition"] == definition).all()
    row = out.set_index("id")
    assert row.loc["gap", "n_missing_days"] == 1
    assert row.loc["nodata", "flag_no_insulin_data"]
    assert row.loc["nodata", "n_missing_days"] == 186


def test_secondary_details_and_followup() -> None:
    ins, p = _secondary_cohort()
    out = zimislecel_secondary(ins, p, definition="through_end").set_index("id")
    assert out.loc["late", "independent_from_day"] == 200
    assert out.loc["gap", "independent_from_day"] == 251
    assert np.isnan(out.loc["short", "independent_from_day"])
    short = zimislecel_secondary(ins, p, definition="through_end", min_consecutive_days=11)
    assert short.set_index("id").loc["short", "insulin_independent"]
    p2 = p.assign(last_followup_day=[365, 365, 365, 365, 365, 364, 365])
    out2 = zimislecel_secondary(ins, p2, definition="any_run").set_index("id")
    assert out2.loc["short", "flag_incomplete_followup"]
    with pytest.raises(ValueError, match="definition"):
        zimislecel_secondary(ins, p, definition="sometimes")  # type: ignore[arg-type]


# ------------------------------------------------------------------ proportions


def test_clopper_pearson_published_and_closed_forms() -> None:
    lo, hi = clopper_pearson(10, 12)  # zimislecel insulin independence 10/12
    assert lo == pytest.approx(0.5159, abs=1e-4)
    assert hi == pytest.approx(0.9791, abs=1e-4)
    n = 12
    assert clopper_pearson(0, n) == (0.0, pytest.approx(1 - 0.025 ** (1 / n)))
    assert clopper_pearson(n, n) == (pytest.approx(0.025 ** (1 / n)), 1.0)


@pytest.mark.parametrize(("k", "n"), [(1, 5), (3, 10), (7, 14), (40, 50), (1, 1)])
def test_clopper_pearson_matches_scipy_exact(k: int, n: int) -> None:
    ref = binomtest(k, n).proportion_ci(confidence_level=0.9, method="exact")
    assert clopper_pearson(k, n, confidence=0.9) == (
        pytest.approx(ref.low),
        pytest.approx(ref.high),
    )


def test_proportion_summary() -> None:
    s = proportion_summary(pd.Series([True] * 10 + [False] * 2))
    assert (s["n"], s["N"]) == (10, 12)
    assert s["proportion"] == pytest.approx(10 / 12)
    assert s["ci_low"] < s["proportion"] < s["ci_high"]
    with pytest.raises(ValueError, match="missing"):
        proportion_summary(pd.Series([True, None]))
    with pytest.raises(ValueError, match="no participants"):
        proportion_summary([])
    with pytest.raises(ValueError, match="successes"):
        clopper_pearson(5, 4)
    with pytest.raises(ValueError, match="boolean"):
        proportion_summary([1, 0])
