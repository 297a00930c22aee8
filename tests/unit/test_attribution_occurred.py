"""When a purchase or refund happened: ``occurred_at`` within its bounds (clock skew ahead,
maximum age behind), the default, and the settings that configure the bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.attribution.models import ConversionIn, RefundIn
from services.attribution.occurred import TimeBounds, not_before, occurred_at
from services.attribution.settings import AttributionSettings
from shared.http.problems import Problem

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BOUNDS = TimeBounds(max_age=timedelta(days=90), clock_skew=timedelta(minutes=5))


def test_omitted_means_when_it_was_received() -> None:
    assert occurred_at(None, RECEIVED, BOUNDS) == RECEIVED


@pytest.mark.parametrize(
    ("offset", "problem"),
    [
        (timedelta(minutes=5, seconds=1), "occurred-in-the-future"),
        (timedelta(days=1), "occurred-in-the-future"),
        (-timedelta(days=90, seconds=1), "occurred-too-long-ago"),
        (-timedelta(days=400), "occurred-too-long-ago"),
    ],
)
def test_out_of_bounds_is_a_422_naming_occurred_at(offset: timedelta, problem: str) -> None:
    with pytest.raises(Problem) as caught:
        occurred_at(RECEIVED + offset, RECEIVED, BOUNDS)
    assert caught.value.status == 422
    assert caught.value.field == "occurred_at"
    assert caught.value.type.endswith(problem)


@given(
    offset_s=st.integers(min_value=-200 * 86_400, max_value=86_400),
    max_age_days=st.integers(min_value=1, max_value=120),
    skew_s=st.integers(min_value=0, max_value=900),
)
def test_accepted_exactly_within_the_bounds(offset_s: int, max_age_days: int, skew_s: int) -> None:
    bounds = TimeBounds(max_age=timedelta(days=max_age_days), clock_skew=timedelta(seconds=skew_s))
    given_at = RECEIVED + timedelta(seconds=offset_s)
    inside = -max_age_days * 86_400 <= offset_s <= skew_s
    try:
        assert occurred_at(given_at, RECEIVED, bounds) == given_at
        accepted = True
    except Problem:
        accepted = False
    assert accepted == inside


@given(gap_s=st.integers(min_value=-3600, max_value=3600))
def test_not_before_allows_the_clock_skew(gap_s: int) -> None:
    earliest = RECEIVED
    assert not_before(earliest + timedelta(seconds=gap_s), earliest, BOUNDS) == (gap_s >= -300)


def test_the_bounds_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert AttributionSettings().time_bounds() == BOUNDS
    monkeypatch.setenv("OCCURRED_AT_MAX_AGE_DAYS", "30")
    monkeypatch.setenv("OCCURRED_AT_CLOCK_SKEW_S", "60")
    assert AttributionSettings().time_bounds() == TimeBounds(
        max_age=timedelta(days=30), clock_skew=timedelta(seconds=60)
    )


BODIES: list[tuple[type[Any], dict[str, Any]]] = [
    (ConversionIn, {"customer_id": "c", "order_id": "o", "amount": 1, "currency": "USD"}),
    (RefundIn, {"refund_id": "r", "order_id": "o"}),
]


@pytest.mark.parametrize(("model", "body"), BODIES)
def test_occurred_at_needs_a_time_zone(model: type[Any], body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({**body, "occurred_at": "2026-03-01T12:00:00"})
    assert caught.value.errors()[0]["loc"] == ("occurred_at",)
    parsed = model.model_validate({**body, "occurred_at": "2026-03-01T12:00:00+01:00"})
    assert parsed.occurred_at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert model.model_validate(body).occurred_at is None
