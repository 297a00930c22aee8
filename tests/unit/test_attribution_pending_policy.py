"""The pure rules behind pending attribution: which reasons mean "wait", what a signup that
waited too long is given up with, and which ``occurred_at`` a signup may claim."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.attribution.fraud import SignupFacts, disposable_email
from services.attribution.policy import (
    CLOCK_SKEW,
    NEVER_ARRIVED,
    WAITING_FOR,
    attribute_click,
    check_occurred_at,
)
from shared.contracts.sections.fraud import FraudPolicy

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(days=30)


def test_an_unknown_click_waits_for_the_click_and_gives_up_with_its_own_reason() -> None:
    decision = attribute_click(None, program_id=uuid.uuid4(), signed_up_at=NOW, window_days=90)
    assert WAITING_FOR[decision.reason] == "click"
    assert NEVER_ARRIVED[WAITING_FOR[decision.reason]] == "click_never_arrived"
    assert NEVER_ARRIVED[WAITING_FOR["unknown_code"]] == "code_never_arrived"


def test_occurred_at_defaults_to_now_and_its_bounds_are_inclusive() -> None:
    assert check_occurred_at(None, NOW, MAX_AGE) is None
    assert check_occurred_at(NOW + CLOCK_SKEW, NOW, MAX_AGE) is None
    assert check_occurred_at(NOW - MAX_AGE, NOW, MAX_AGE) is None
    assert "future" in (check_occurred_at(NOW + CLOCK_SKEW * 2, NOW, MAX_AGE) or "")
    assert "maximum age" in (check_occurred_at(NOW - MAX_AGE * 2, NOW, MAX_AGE) or "")


@given(offset=st.integers(min_value=-100 * 24 * 3600, max_value=3600))
def test_occurred_at_is_accepted_exactly_inside_the_skew_and_the_age(offset: int) -> None:
    at = NOW + timedelta(seconds=offset)
    accepted = check_occurred_at(at, NOW, MAX_AGE) is None
    assert accepted == (NOW - MAX_AGE <= at <= NOW + CLOCK_SKEW)


def test_a_disposable_domain_judged_on_receipt_still_fires_when_decided_late() -> None:
    # A late decision no longer has the email's domain, only the flag taken on receipt.
    rule = FraudPolicy().disposable_email
    assert disposable_email(SignupFacts(customer_id="c", email_disposable=True), rule)
    assert disposable_email(SignupFacts(customer_id="c"), rule) is None
