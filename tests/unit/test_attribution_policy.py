"""Attribution policy: which signup goes to which referrer, and which version is in force."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.attribution.policy import Click, Decision, attribute_click

PROGRAM = uuid.UUID(int=1)
OTHER_PROGRAM = uuid.UUID(int=2)
REFERRER = uuid.UUID(int=3)
CLICKED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = 30


def _click(**overrides: object) -> Click:
    fields: dict[str, object] = {
        "click_id": uuid.UUID(int=9),
        "program_id": PROGRAM,
        "participant_id": REFERRER,
        "clicked_at": CLICKED,
        "attributable": True,
    }
    fields.update(overrides)
    return Click(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("click", "signed_up_at", "referrer", "reason"),
    [
        (None, CLICKED + timedelta(hours=1), None, "unknown_click"),
        (_click(program_id=OTHER_PROGRAM), CLICKED + timedelta(hours=1), None,
         "click_of_another_program"),
        (_click(attributable=False), CLICKED + timedelta(hours=1), None,
         "non_attributable_click"),
        (_click(), CLICKED - timedelta(microseconds=1), None, "click_after_signup"),
        (_click(), CLICKED - timedelta(days=1), None, "click_after_signup"),
        (_click(), CLICKED + timedelta(days=WINDOW, microseconds=1), None,
         "click_outside_window"),
        (_click(), CLICKED + timedelta(days=400), None, "click_outside_window"),
        (_click(), CLICKED + timedelta(days=WINDOW), REFERRER, "click"),
        (_click(), CLICKED, REFERRER, "click"),
        (_click(), CLICKED + timedelta(minutes=5), REFERRER, "click"),
        (_click(), CLICKED + timedelta(days=WINDOW - 1, hours=23), REFERRER, "click"),
    ],
    ids=[
        "unknown-click",
        "other-program",
        "non-attributable",
        "click-1us-after-signup",
        "click-a-day-after-signup",
        "1us-outside-window",
        "far-outside-window",
        "exactly-at-window-boundary",
        "same-instant",
        "inside-window",
        "just-inside-window",
    ],
)  # fmt: skip
def test_attribute_click(
    click: Click | None, signed_up_at: datetime, referrer: uuid.UUID | None, reason: str
) -> None:
    decision = attribute_click(
        click, program_id=PROGRAM, signed_up_at=signed_up_at, window_days=WINDOW
    )
    assert decision == Decision(referrer, reason)
    assert (decision.referrer_id is not None) is (referrer is not None)


def test_program_is_checked_before_attributability() -> None:
    click = _click(program_id=OTHER_PROGRAM, attributable=False)
    decision = attribute_click(click, program_id=PROGRAM, signed_up_at=CLICKED, window_days=1)
    assert decision.reason == "click_of_another_program"


@given(
    offset=st.timedeltas(min_value=timedelta(days=-800), max_value=timedelta(days=800)),
    window_days=st.integers(min_value=1, max_value=3650),
    attributable=st.booleans(),
    same_program=st.booleans(),
    clicked_at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
)
def test_attributed_iff_in_window_attributable_and_same_program(
    offset: timedelta,
    window_days: int,
    attributable: bool,
    same_program: bool,
    clicked_at: datetime,
) -> None:
    click = _click(
        clicked_at=clicked_at,
        attributable=attributable,
        program_id=PROGRAM if same_program else OTHER_PROGRAM,
    )
    decision = attribute_click(
        click, program_id=PROGRAM, signed_up_at=clicked_at + offset, window_days=window_days
    )
    expected = (
        timedelta(0) <= offset <= timedelta(days=window_days) and attributable and same_program
    )
    assert (decision.referrer_id is not None) is expected
    assert decision.referrer_id == (REFERRER if expected else None)
    assert (decision.reason == "click") is expected


# --- first click, calendar months, qualification ---------------------------------------------

from services.attribution.policy import Qualifying, add_months, first_click, qualify  # noqa: E402
from shared.contracts.sections.attribution import AttributionPolicy, Qualification  # noqa: E402


def test_first_click_picks_the_earliest_attributable_click_in_the_window() -> None:
    named = _click(click_id=uuid.UUID(int=10), clicked_at=CLICKED)
    early = _click(click_id=uuid.UUID(int=11), clicked_at=CLICKED - timedelta(days=5),
                   participant_id=uuid.UUID(int=4))  # fmt: skip
    bot = _click(click_id=uuid.UUID(int=12), clicked_at=CLICKED - timedelta(days=6),
                 attributable=False)  # fmt: skip
    stale = _click(click_id=uuid.UUID(int=13), clicked_at=CLICKED - timedelta(days=40))
    other = _click(click_id=uuid.UUID(int=14), clicked_at=CLICKED - timedelta(days=7),
                   program_id=OTHER_PROGRAM)  # fmt: skip
    chosen = first_click(
        named, [early, bot, stale, other], signed_up_at=CLICKED, window_days=WINDOW
    )
    assert chosen == early
    assert first_click(named, [], signed_up_at=CLICKED, window_days=WINDOW) == named


@given(
    offsets=st.lists(st.integers(min_value=0, max_value=60 * 24 * 120), max_size=8),
    window_days=st.integers(min_value=1, max_value=100),
)
def test_first_click_result_is_always_attributable_in_window(
    offsets: list[int], window_days: int
) -> None:
    signed_up_at = CLICKED + timedelta(hours=1)
    named = _click(clicked_at=CLICKED)
    clicks = [
        _click(click_id=uuid.UUID(int=100 + i), clicked_at=CLICKED - timedelta(minutes=m))
        for i, m in enumerate(offsets)
    ]
    chosen = first_click(named, clicks, signed_up_at=signed_up_at, window_days=window_days)
    assert chosen.clicked_at <= named.clicked_at
    in_window = [c for c in clicks if signed_up_at - c.clicked_at <= timedelta(days=window_days)]
    assert chosen.clicked_at == min([c.clicked_at for c in in_window] + [named.clicked_at])


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2024, 1, 31, tzinfo=UTC), 1, datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2023, 1, 31, tzinfo=UTC), 1, datetime(2023, 2, 28, tzinfo=UTC)),
        (datetime(2024, 11, 15, tzinfo=UTC), 3, datetime(2025, 2, 15, tzinfo=UTC)),
        (datetime(2024, 5, 31, tzinfo=UTC), 12, datetime(2025, 5, 31, tzinfo=UTC)),
        (datetime(2024, 5, 31, tzinfo=UTC), 0, datetime(2024, 5, 31, tzinfo=UTC)),
    ],
)
def test_add_months(start: datetime, months: int, expected: datetime) -> None:
    assert add_months(start, months) == expected


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)),
       st.integers(min_value=0, max_value=120))  # fmt: skip
def test_add_months_moves_forward_by_whole_months(start: datetime, months: int) -> None:
    moved = add_months(start, months)
    assert (moved.year * 12 + moved.month) - (start.year * 12 + start.month) == months
    assert moved >= start and moved.day <= start.day


SIGNED = datetime(2024, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rules", "days_after", "amount", "currency", "earlier", "expected"),
    [
        (Qualification(), 1, 1, "USD", [], Qualifying(True, "first_purchase", 1)),
        (Qualification(), 1, 1, "USD", [SIGNED], Qualifying(False, "already_converted")),
        (Qualification(min_amount={"amount": 1000, "unit": "USD"}), 1, 999, "USD", [],
         Qualifying(False, "below_minimum_amount")),
        (Qualification(min_amount={"amount": 1000, "unit": "USD"}), 1, 1000, "USD", [],
         Qualifying(True, "first_purchase", 1)),
        (Qualification(min_amount={"amount": 1000, "unit": "USD"}), 1, 9999, "EUR", [],
         Qualifying(False, "below_minimum_amount")),
        (Qualification(within_days=30), 30, 1, "USD", [], Qualifying(True, "first_purchase", 1)),
        (Qualification(within_days=30), 31, 1, "USD", [],
         Qualifying(False, "outside_qualifying_days")),
        (Qualification(recurring_months=2), 40, 1, "USD", [SIGNED],
         Qualifying(True, "recurring_purchase", 2)),
        (Qualification(recurring_months=2), 60, 1, "USD", [SIGNED, SIGNED],
         Qualifying(True, "recurring_purchase", 3)),
        (Qualification(recurring_months=2), 61, 1, "USD", [SIGNED],
         Qualifying(False, "recurring_period_over")),
    ],
)  # fmt: skip
def test_qualify(
    rules: Qualification,
    days_after: int,
    amount: int,
    currency: str,
    earlier: list[datetime],
    expected: Qualifying,
) -> None:
    verdict = qualify(
        rules,
        signed_up_at=SIGNED,
        converted_at=SIGNED + timedelta(days=days_after),
        amount=amount,
        currency=currency,
        earlier=earlier,
    )
    assert verdict == expected


@given(
    purchases=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=12),
    months=st.integers(min_value=0, max_value=6),
)
def test_sequences_are_consecutive_from_one(purchases: list[int], months: int) -> None:
    rules = Qualification(recurring_months=months)
    earlier: list[datetime] = []
    for day in sorted(purchases):
        at = SIGNED + timedelta(days=day)
        verdict = qualify(rules, signed_up_at=SIGNED, converted_at=at, amount=1,
                          currency="USD", earlier=earlier)  # fmt: skip
        if verdict.qualified:
            assert verdict.sequence == len(earlier) + 1
            earlier.append(at)
    assert len(earlier) >= 1
    if months == 0:
        assert len(earlier) == 1
    assert all(t <= add_months(earlier[0], months) for t in earlier)


def test_policy_defaults() -> None:
    policy = AttributionPolicy()
    assert policy.window_days == 90 and policy.model == "last_click"
    assert policy.allow_code_without_click and policy.exclude_existing_customers
    assert policy.qualification == Qualification()
