"""Attribution policy: which signup goes to which referrer, and which version is in force."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.attribution.policy import Click, Decision, attribute_click, version_in_force

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
    assert decision.attributed is (referrer is not None)


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
    assert decision.attributed is expected
    assert decision.referrer_id == (REFERRER if expected else None)
    assert (decision.reason == "click") is expected


T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("versions", "at", "expected"),
    [
        ([], T0, None),
        ([(1, T0 + timedelta(seconds=1))], T0, None),
        ([(1, T0)], T0, 1),
        ([(1, T0), (2, T0 + timedelta(days=10))], T0 + timedelta(days=5), 1),
        ([(1, T0), (2, T0 + timedelta(days=10))], T0 + timedelta(days=10), 2),
        ([(1, T0), (2, T0 + timedelta(days=10))], T0 + timedelta(days=99), 2),
        ([(3, T0 + timedelta(days=1)), (1, T0), (2, T0 + timedelta(days=2))],
         T0 + timedelta(days=1, hours=1), 3),
        ([(1, T0), (2, T0 + timedelta(days=1)), (3, T0 + timedelta(days=30))],
         T0 + timedelta(days=2), 2),
    ],
    ids=[
        "no-versions",
        "none-eligible-yet",
        "effective-exactly-now",
        "future-version-ignored",
        "new-version-at-its-start",
        "latest-of-all",
        "highest-eligible-regardless-of-order",
        "future-versions-ignored",
    ],
)  # fmt: skip
def test_version_in_force(
    versions: list[tuple[int, datetime]], at: datetime, expected: int | None
) -> None:
    assert version_in_force(versions, at) == expected


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=50),
            st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
        ),
        max_size=10,
    ),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
)
def test_version_in_force_property(versions: list[tuple[int, datetime]], at: datetime) -> None:
    result = version_in_force(versions, at)
    eligible = {v for v, start in versions if start <= at}
    if not eligible:
        assert result is None
    else:
        assert result == max(eligible)
        assert all(v <= result for v in eligible)
