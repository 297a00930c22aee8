"""Return on investment per unit: hand-computed figures, and the invariant that amounts of
different units are never combined."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.links.insights.stats import roi_lines


def _by_unit(
    revenue: dict[str, int], cost: dict[str, int]
) -> dict[str, tuple[int, int, float | None]]:
    return {
        line.unit: (line.revenue, line.reward_cost, line.roi) for line in roi_lines(revenue, cost)
    }


def test_roi_is_revenue_against_cost_in_the_same_currency() -> None:
    # USD: 9000 paid - 4000 refunded = 5000 against 2000 issued: (5000 - 2000) / 2000 = 1.5.
    # EUR: 3000 against 4000: (3000 - 4000) / 4000 = -0.25.
    # MB rewards have no revenue: no ROI, and they are not turned into money.
    # GBP: revenue without any reward cost: no ROI (nothing spent to divide by).
    lines = _by_unit(
        {"USD": 5000, "EUR": 3000, "GBP": 700},
        {"USD": 2000, "EUR": 4000, "MB": 500},
    )
    assert lines == {
        "EUR": (3000, 4000, -0.25),
        "GBP": (700, 0, None),
        "MB": (0, 500, None),
        "USD": (5000, 2000, 1.5),
    }
    assert [line.unit for line in roi_lines({"USD": 1}, {"EUR": 1, "MB": 1})] == [
        "EUR",
        "MB",
        "USD",
    ]


def test_a_currency_refunded_to_nothing_still_counts_as_paid_in() -> None:
    # Revenue 0 after refunds against 2000 spent: -100%, not "undefined".
    assert _by_unit({"USD": 0}, {"USD": 2000}) == {"USD": (0, 2000, -1.0)}
    # A cost in a currency nobody paid in has no ratio against another currency's revenue.
    assert _by_unit({"EUR": 10_000}, {"USD": 2000}) == {
        "EUR": (10_000, 0, None),
        "USD": (0, 2000, None),
    }


def test_nothing_in_gives_nothing_out() -> None:
    assert roi_lines({}, {}) == []


units = st.sampled_from(["USD", "EUR", "JPY", "MB", "PERK", "MONTH"])
amounts = st.integers(min_value=-(10**12), max_value=10**12)


@given(st.dictionaries(units, amounts), st.dictionaries(units, amounts))
def test_each_line_holds_one_units_amounts_only(
    revenue: dict[str, int], cost: dict[str, int]
) -> None:
    lines = roi_lines(revenue, cost)
    assert [line.unit for line in lines] == sorted(revenue.keys() | cost.keys())
    for line in lines:
        assert line.revenue == revenue.get(line.unit, 0)
        assert line.reward_cost == cost.get(line.unit, 0)
        if line.roi is None:
            assert line.unit not in revenue or line.reward_cost <= 0
        else:
            assert line.unit in revenue and line.reward_cost > 0
            assert line.roi * line.reward_cost == pytest.approx(line.revenue - line.reward_cost)
