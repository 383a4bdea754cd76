import numpy as np
import pytest

from isletsim.meals import DailyMeals, MealEvents, MealSpecError


def test_parse_and_events():
    plan = DailyMeals.parse("12:00=70, 07:00=45,18:30=80.5")
    assert plan.meals == ((420, 45.0), (720, 70.0), (1110, 80.5))
    ev = plan.events(2, 0, 2880)
    assert ev.ptr.tolist() == [0, 6, 12]
    assert ev.minute[:6].tolist() == [420, 720, 1110, 1860, 2160, 2550]
    assert ev.grams.sum() == pytest.approx(2 * 2 * 195.5)
    assert DailyMeals.parse("").events(3, 0, 100).ptr.tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("bad", ["7=45", "07:00=", "25:00=4", "07:61=4", "07:00=-5", "x"])
def test_malformed_meal_quotes_item(bad):
    with pytest.raises(MealSpecError) as exc:
        DailyMeals.parse(f"12:00=70,{bad}")
    assert repr(bad.strip()) in str(exc.value)


def test_events_from_lists_sorted():
    ev = MealEvents.from_lists([[(30, 10.0), (5, 2.0)], []])
    assert ev.ptr.tolist() == [0, 2, 2]
    assert ev.minute.tolist() == [5, 30]
    assert np.array_equal(ev.grams, [2.0, 10.0])
