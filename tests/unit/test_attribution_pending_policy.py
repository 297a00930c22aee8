"""The pure rules behind pending attribution: which reasons mean "wait", what a signup that
waited too long is given up with."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.attribution.fraud import SignupFacts, disposable_email
from services.attribution.policy import (
    NEVER_ARRIVED,
    WAITING_FOR,
    attribute_click,
)
from shared.contracts.sections.fraud import FraudPolicy

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(days=30)


def test_an_unknown_click_waits_for_the_click_and_gives_up_with_its_own_reason() -> None:
    decision = attribute_click(None, program_id=uuid.uuid4(), signed_up_at=NOW, window_days=90)
    assert WAITING_FOR[decision.reason] == "click"
    assert NEVER_ARRIVED[WAITING_FOR[decision.reason]] == "click_never_arrived"
    assert NEVER_ARRIVED[WAITING_FOR["unknown_code"]] == "code_never_arrived"


def test_a_disposable_domain_judged_on_receipt_still_fires_when_decided_late() -> None:
    # A late decision no longer has the email's domain, only the flag taken on receipt.
    rule = FraudPolicy().disposable_email
    assert disposable_email(SignupFacts(customer_id="c", email_disposable=True), rule)
    assert disposable_email(SignupFacts(customer_id="c"), rule) is None
