"""A program's notification settings, whether a message goes out and why not, retry schedule,
disabling, milestones, signed unsubscribe tokens."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifications.policy import (
    Recipient,
    hold_days,
    milestone_thresholds,
    next_threshold,
    one_away,
    permanent_smtp_failure,
    policy_of,
    retry_delay,
    should_disable,
    skip_reason,
    webhook_status,
)
from services.notifications.unsubscribe import make_token, read_token

OK = Recipient(has_address=True, erased=False, subscribed=True, marketing_sent_last_day=0)

DEFINITION = {
    "notifications": {"share_reminder_days": 5},
    "variants": [
        {"name": "a", "notifications": {"email": False}},
        {"name": "b"},
    ],
    "rewards": {"milestones": [{"threshold": 10}, {"threshold": 5}, {"perk": "x"}], "hold_days": 7},
}


def test_policy_of_takes_the_variants_own_section_else_the_programs() -> None:
    assert policy_of(DEFINITION).share_reminder_days == 5
    assert policy_of(DEFINITION, "b").share_reminder_days == 5  # no section of its own
    variant_a = policy_of(DEFINITION, "a")
    assert variant_a.email is False
    assert variant_a.share_reminder_days == 3  # the variant's section replaces the program's


def test_policy_of_an_unknown_program_or_an_invalid_section_is_the_default() -> None:
    assert policy_of({}) == policy_of({"notifications": {"marketing_per_day": -1}})
    assert policy_of({}).email is True


def test_milestone_thresholds_and_hold_days_read_the_rewards_section() -> None:
    assert milestone_thresholds(DEFINITION) == [5, 10]
    assert hold_days(DEFINITION) == 7.0
    assert milestone_thresholds({}) == [] and hold_days({}) == 0.0


@pytest.mark.parametrize(
    ("channel", "category", "recipient", "email_on", "cap", "reason"),
    [
        ("email", "transactional", OK, True, 2, None),
        ("email", "marketing", OK, True, 2, None),
        ("email", "marketing", OK, False, 2, "email disabled for this program"),
        (
            "email",
            "transactional",
            Recipient(False, False, True, 0),
            True,
            2,
            "no email address",
        ),
        (
            "email",
            "marketing",
            Recipient(True, False, False, 0),
            True,
            2,
            "unsubscribed from marketing messages",
        ),
        (
            "email",
            "marketing",
            Recipient(True, False, True, 2),
            True,
            2,
            "frequency cap: 2 marketing emails per 24 hours",
        ),
        # The cap is for marketing only.
        ("email", "transactional", Recipient(True, False, True, 9), True, 2, None),
        ("email", "marketing", Recipient(True, True, True, 0), True, 2, "participant erased"),
        ("in_app", "marketing", Recipient(False, False, False, 9), False, 0, None),
        ("in_app", "transactional", Recipient(True, True, True, 0), True, 2, "participant erased"),
    ],
)
def test_skip_reason(
    channel: str,
    category: str,
    recipient: Recipient,
    email_on: bool,
    cap: int,
    reason: str | None,
) -> None:
    assert (
        skip_reason(
            channel=channel,
            category=category,
            recipient=recipient,
            email_enabled=email_on,
            marketing_per_day=cap,
        )
        == reason
    )


@given(
    st.lists(st.floats(min_value=0, max_value=1e6), max_size=10),
    st.integers(min_value=-2, max_value=15),
)
def test_retry_delay_follows_the_schedule_then_gives_up(schedule: list[float], n: int) -> None:
    delay = retry_delay(n, schedule)
    if 1 <= n <= len(schedule):
        assert delay == schedule[n - 1]
    else:
        assert delay is None


def test_default_schedule_spans_hours() -> None:
    from services.notifications.settings import NotificationsSettings

    schedule = NotificationsSettings().notify_retry_schedule_s
    assert sum(schedule) > 24 * 3600
    assert schedule == sorted(schedule)


@given(st.integers(min_value=0, max_value=100), st.integers(min_value=1, max_value=100))
def test_disable_at_the_limit(failures: int, limit: int) -> None:
    assert should_disable(failures, limit) == (failures >= limit)


@pytest.mark.parametrize(
    ("code", "permanent"), [(550, True), (554, True), (451, False), (421, False), (None, False)]
)
def test_smtp_permanence(code: int | None, permanent: bool) -> None:
    assert permanent_smtp_failure(code) is permanent


@given(
    st.lists(st.integers(min_value=1, max_value=50), unique=True, max_size=6),
    st.integers(min_value=0, max_value=60),
)
def test_milestones(thresholds: list[int], converted: int) -> None:
    nxt = next_threshold(thresholds, converted)
    if nxt is None:
        assert all(t <= converted for t in thresholds)
    else:
        assert nxt > converted and all(not converted < t < nxt for t in thresholds)
    assert (one_away(thresholds, converted) is not None) == (converted + 1 in thresholds)


@given(st.uuids(), st.sampled_from(["marketing", "transactional"]), st.binary(min_size=16))
def test_unsubscribe_tokens_round_trip_and_cannot_be_forged(
    participant: uuid.UUID, category: str, key: bytes
) -> None:
    token = make_token(key, participant, category)
    assert read_token(key, token) == (participant, category)
    other = "transactional" if category == "marketing" else "marketing"
    forged = token.replace(f".{category}.", f".{other}.")
    assert read_token(key, forged) is None
    assert read_token(key + b"x", token) is None
    assert read_token(key, f"{uuid.uuid4()}.{category}.{token.rsplit('.', 1)[1]}") is None


@pytest.mark.parametrize("token", ["", "a.b.c", "x.marketing.y", "..", "a.b"])
def test_garbage_tokens(token: str) -> None:
    assert read_token(b"k" * 16, token) is None


def test_webhook_status_names_the_referral_or_reward_state_of_crm_events() -> None:
    assert webhook_status("referral.signed_up") == {"referral_status": "signed_up"}
    assert webhook_status("referral.flagged") == {"referral_status": "pending_review"}
    assert webhook_status("referral.converted") == {"referral_status": "converted"}
    assert webhook_status("reward.issued") == {"reward_status": "issued"}
    assert webhook_status("reward.failed") == {"reward_status": "failed"}
    # Events without a referral or reward state keep their payload as it was.
    assert webhook_status("participant.enrolled") == {}
    assert webhook_status("milestone.reached") == {}
