"""Event contracts: names, topics, partition keys and money fields."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pydantic
import pytest

from shared.contracts import (
    BY_TYPE,
    EVENTS,
    TOPICS,
    ApiKeyIssued,
    ApiKeyRevoked,
    Event,
    LinkClicked,
    LinkShared,
    MilestoneReached,
    ParticipantEnrolled,
    ParticipantErased,
    ProgramPublished,
    ReferralConverted,
    ReferralFlagged,
    ReferralPending,
    ReferralRejected,
    ReferralReversed,
    ReferralSignedUp,
    RewardCreated,
    RewardFailed,
    RewardIssued,
    RewardReversed,
    dlq_topic,
)
from shared.contracts.base import Amount
from shared.contracts.referrals import RuleOutcome
from tests.factories import (
    api_key_issued,
    link_clicked,
    participant_enrolled,
    program_published,
    referral_converted,
    referral_signed_up,
)

NOW = datetime(2024, 5, 17, 12, 0, tzinfo=UTC)
PROGRAM = uuid.UUID("00000000-0000-4000-8000-000000000001")
REFERRER = uuid.UUID("00000000-0000-4000-8000-000000000002")
REFERRAL = uuid.UUID("00000000-0000-4000-8000-000000000003")
CONVERSION = uuid.UUID("00000000-0000-4000-8000-000000000004")
REWARD = uuid.UUID("00000000-0000-4000-8000-000000000005")
CLICK = uuid.UUID("00000000-0000-4000-8000-000000000006")

EXAMPLES: dict[type[Event], Event] = {
    ProgramPublished: program_published(
        PROGRAM, version=3, effective_from=NOW, name="Give $20, get $20"
    ),
    ParticipantEnrolled: participant_enrolled(
        PROGRAM, REFERRER, code="ABCDEFGH23", enrolled_at=NOW
    ),
    ApiKeyIssued: api_key_issued(PROGRAM, key_id="a1b2c3d4e5f6", created_at=NOW),
    LinkClicked: link_clicked(PROGRAM, REFERRER, click_id=CLICK, code="ABCDEFGH23", clicked_at=NOW),
    ReferralSignedUp: referral_signed_up(
        PROGRAM, REFERRER, referral_id=REFERRAL, referee_customer_id="cust-9", signed_up_at=NOW
    ),
    ReferralConverted: referral_converted(
        PROGRAM,
        REFERRER,
        conversion_id=CONVERSION,
        referral_id=REFERRAL,
        referee_customer_id="cust-9",
        converted_at=NOW,
    ),
    RewardIssued: RewardIssued(
        reward_id=REWARD,
        conversion_id=CONVERSION,
        referral_id=REFERRAL,
        program_id=PROGRAM,
        program_version=3,
        referrer_id=REFERRER,
        side="referee",
        recipient="cust-9",
        amount=2000,
        unit="USD",
        issued_at=NOW,
    ),
    RewardCreated: RewardCreated(
        reward_id=REWARD,
        conversion_id=CONVERSION,
        referral_id=REFERRAL,
        program_id=PROGRAM,
        program_version=3,
        referrer_id=REFERRER,
        side="referrer",
        recipient=str(REFERRER),
        amount=2000,
        unit="USD",
        status="pending",
        available_at=NOW,
        created_at=NOW,
        rule="base",
    ),
    ApiKeyRevoked: ApiKeyRevoked(key_id="a1b2c3d4e5f6", program_id=PROGRAM, revoked_at=NOW),
    ParticipantErased: ParticipantErased(
        participant_id=REFERRER, program_id=PROGRAM, erased_at=NOW
    ),
    LinkShared: LinkShared(
        share_id=CLICK,
        program_id=PROGRAM,
        participant_id=REFERRER,
        code="ABCDEFGH23",
        channel="whatsapp",
        shared_at=NOW,
    ),
    ReferralFlagged: ReferralFlagged(
        referral_id=REFERRAL,
        program_id=PROGRAM,
        referrer_id=REFERRER,
        referee_customer_id="cust-9",
        rules=[RuleOutcome(rule="same_ip", action="flag")],
        flagged_at=NOW,
    ),
    ReferralPending: ReferralPending(
        referral_id=REFERRAL,
        program_id=PROGRAM,
        referee_customer_id="cust-9",
        waiting_for="click",
        click_id=CLICK,
        signed_up_at=NOW,
        received_at=NOW,
        expires_at=NOW,
    ),
    ReferralRejected: ReferralRejected(
        referral_id=REFERRAL,
        program_id=PROGRAM,
        referrer_id=REFERRER,
        referee_customer_id="cust-9",
        rules=[RuleOutcome(rule="self_referral", action="reject")],
        rejected_at=NOW,
    ),
    ReferralReversed: ReferralReversed(
        refund_id=CLICK,
        conversion_id=CONVERSION,
        referral_id=REFERRAL,
        program_id=PROGRAM,
        referrer_id=REFERRER,
        order_id="order-1",
        refunded_amount=4999,
        currency="USD",
        full=True,
        reversed_at=NOW,
    ),
    RewardReversed: RewardReversed(
        reward_id=REWARD,
        conversion_id=CONVERSION,
        program_id=PROGRAM,
        referrer_id=REFERRER,
        side="referrer",
        recipient=str(REFERRER),
        amount=2000,
        unit="USD",
        kind="clawed_back",
        reversed_at=NOW,
    ),
    RewardFailed: RewardFailed(
        reward_id=REWARD,
        program_id=PROGRAM,
        referrer_id=REFERRER,
        side="referrer",
        recipient=str(REFERRER),
        amount=2000,
        unit="USD",
        reason="coupon pool empty",
        failed_at=NOW,
    ),
    MilestoneReached: MilestoneReached(
        program_id=PROGRAM,
        referrer_id=REFERRER,
        threshold=5,
        perk="event invitation",
        reached_at=NOW,
    ),
}


def test_every_registered_event_has_an_example_here() -> None:
    assert set(EXAMPLES) == set(EVENTS)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.__name__)
def test_type_is_topic_plus_major_version(event: type[Event]) -> None:
    match = re.fullmatch(r"(?P<topic>[a-z]+(?:\.[a-z_]+)+)\.v(?P<major>[1-9][0-9]*)", event.TYPE)
    assert match, f"{event.TYPE!r} does not end in .v<N>"
    assert event.TOPIC == match["topic"]


def test_types_are_unique_and_indexed() -> None:
    types = [e.TYPE for e in EVENTS]
    assert len(types) == len(set(types))
    assert {t: BY_TYPE[t] for t in types} == {e.TYPE: e for e in EVENTS}
    assert len(BY_TYPE) == len(EVENTS)


def test_topics_are_listed_once_each() -> None:
    assert len(TOPICS) == len(set(TOPICS))
    assert set(TOPICS) == {e.TOPIC for e in EVENTS}


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.__name__)
def test_key_is_a_non_empty_string(event: type[Event]) -> None:
    key = EXAMPLES[event].key()
    assert isinstance(key, str)
    assert key.strip()


@pytest.mark.parametrize(
    "event",
    # A pending signup's referrer is what is not known yet: it is keyed by the referral.
    [
        e
        for e in EVENTS
        if e.TOPIC.startswith(("referral.", "reward.")) and e is not ReferralPending
    ],
    ids=lambda e: e.__name__,
)
def test_referral_and_reward_events_are_keyed_by_the_referrer(event: type[Event]) -> None:
    assert EXAMPLES[event].key() == str(REFERRER)


def test_a_pending_referral_and_its_resolution_share_the_referral_key() -> None:
    waiting = EXAMPLES[ReferralPending]
    resolved = waiting.model_copy(
        update={"resolved_at": NOW, "status": "active", "referrer_id": REFERRER}
    )
    assert waiting.key() == resolved.key() == str(REFERRAL)


def test_there_are_referral_and_reward_events_to_check() -> None:
    prefixes = {e.TOPIC.split(".")[0] for e in EVENTS}
    assert {"referral", "reward"} <= prefixes


def test_link_clicked_is_keyed_by_code() -> None:
    assert EXAMPLES[LinkClicked].key() == "ABCDEFGH23"


def test_program_events_are_keyed_by_program() -> None:
    assert EXAMPLES[ProgramPublished].key() == str(PROGRAM)
    assert EXAMPLES[ProgramPublished].subject() == f"program/{PROGRAM}/v3"


def test_event_json_round_trips() -> None:
    for event_type, example in EXAMPLES.items():
        assert event_type.model_validate_json(example.model_dump_json()) == example


def test_base_event_has_no_key() -> None:
    with pytest.raises(NotImplementedError):
        Event().key()


@pytest.mark.parametrize("topic", ["referral.converted", "link.clicked"])
def test_dlq_topic(topic: str) -> None:
    assert dlq_topic(topic) == f"{topic}.dlq"


# --- money -----------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, 1, 2000, 10**12])
def test_amount_accepts_non_negative_integers(amount: int) -> None:
    value = Amount(amount=amount, unit="USD")
    assert value.amount == amount
    assert type(value.amount) is int


@pytest.mark.parametrize("amount", [-1, -2000, 10**12 + 1, 20.5, "20.5", "abc", None])
def test_amount_rejects_negative_fractional_and_garbage(amount: object) -> None:
    with pytest.raises(pydantic.ValidationError):
        Amount(amount=amount, unit="USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("unit", ["usd", "U", "", "US D", "A" * 17, "1USD"])
def test_amount_rejects_bad_unit_codes(unit: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        Amount(amount=1, unit=unit)


@pytest.mark.parametrize("unit", ["USD", "MB", "MONTH", "PERK", "GB_10"])
def test_amount_accepts_unit_codes(unit: str) -> None:
    assert Amount(amount=1, unit=unit).unit == unit


def test_amount_forbids_extra_fields() -> None:
    with pytest.raises(pydantic.ValidationError):
        Amount(amount=1, unit="USD", cents=True)  # type: ignore[call-arg]


_LAX_MONEY = (
    "BUG: MinorUnits is a lax int, so pydantic coerces strings, floats and booleans into money "
    '(e.g. "20.00" meaning twenty dollars becomes 20 cents); make it strict: '
    "Annotated[int, Field(ge=0, le=10**12, strict=True)] in shared/contracts/base.py"
)


@pytest.mark.parametrize(
    "payload",
    [
        '{"amount": "20.00", "unit": "USD"}',
        '{"amount": "2000", "unit": "USD"}',
        '{"amount": 20.0, "unit": "USD"}',
        '{"amount": true, "unit": "USD"}',
    ],
)
def test_amount_from_json_must_be_a_json_integer(payload: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        Amount.model_validate_json(payload)


@pytest.mark.parametrize("amount", ["20.00", "2000", 20.0, True])
def test_event_money_fields_are_not_coerced(amount: object) -> None:
    data = EXAMPLES[ReferralConverted].model_dump(mode="json") | {"amount": amount}
    with pytest.raises(pydantic.ValidationError):
        ReferralConverted.model_validate(data)
