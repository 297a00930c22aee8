"""Milestones and flagged referrals: who hears, on which channel, in which words."""

from __future__ import annotations

import json
import uuid

from standardwebhooks.webhooks import Webhook

from services.notifications import reminders
from shared.contracts import (
    MilestoneReached,
    ParticipantEnrolled,
    ReferralFlagged,
    RewardIssued,
)
from shared.contracts.referrals import RuleOutcome
from tests.integration.notifications.conftest import NOW, World
from tests.integration.notifications.receivers import WebhookReceiver


async def test_a_milestone_reaches_the_feed_email_and_webhooks(
    world: World, receiver: WebhookReceiver
) -> None:
    program_id = await world.program()
    _, secret = await world.endpoint(program_id, receiver.url())
    ada = await world.enrol(program_id, email="ada@example.com", locale="zh")
    event = MilestoneReached(
        program_id=program_id,
        referrer_id=ada.participant_id,
        threshold=5,
        perk="Founders' edition",
        reached_at=NOW,
    )
    env = await world.apply(event)
    await world.apply(event, env)  # redelivered: nothing more
    [item] = await world.pool.fetch(
        "SELECT title, body FROM notifications WHERE kind = 'milestone_reached'"
    )
    assert item["title"] == "你已达成 5 次推荐"
    assert "Founders' edition" in item["body"]
    await world.send_all()
    subjects = [m["Subject"] for m in world.smtp.to("ada@example.com")]
    assert sorted(subjects) == sorted(
        ["欢迎加入推荐计划", "你已达成 5 次推荐"]
    )  # sent concurrently
    types = [Webhook(secret).verify(r.body, r.headers)["type"] for r in receiver.received()]
    assert sorted(types) == ["milestone.reached", "participant.enrolled"]


async def test_a_flagged_referral_goes_to_ops_only(world: World, receiver: WebhookReceiver) -> None:
    program_id = await world.program(
        {"notifications": {"ops_emails": ["ops@example.com", "risk@example.com"]}}
    )
    await world.endpoint(program_id, receiver.url(), event_types=["referral.flagged"])
    ada = await world.enrol(program_id, email="ada@example.com")
    referral_id = uuid.uuid4()
    await world.apply(
        ReferralFlagged(
            referral_id=referral_id,
            program_id=program_id,
            referrer_id=ada.participant_id,
            referee_customer_id="c-1",
            rules=[
                RuleOutcome(rule="self_referral", action="review"),
                RuleOutcome(rule="velocity", action="review", shadow=True),
            ],
            flagged_at=NOW,
        )
    )
    await world.send_all()
    for address in ("ops@example.com", "risk@example.com"):
        [mail] = world.smtp.to(address)
        assert mail["Subject"] == "[ops] A referral is held for review"
        body = mail.get_body(("plain",)).get_content()
        assert str(referral_id) in body and "self_referral" in body and "velocity" not in body
    assert [m["Subject"] for m in world.smtp.to("ada@example.com")] == [
        "Welcome to the referral program"
    ]
    [hook] = receiver.received()
    assert json.loads(hook.body)["data"]["referral_id"] == str(referral_id)
    ops_rows = await world.deliveries(trigger="referral_flagged")
    assert {r["recipient_key"][:4] for r in ops_rows} == {"ops:"}
    assert all("@" not in r["recipient_key"] for r in ops_rows)


def _reward(program_id: uuid.UUID, referrer_id: uuid.UUID, **extra: object) -> RewardIssued:
    return RewardIssued.model_validate(
        {
            "reward_id": uuid.uuid4(),
            "conversion_id": uuid.uuid4(),
            "referral_id": uuid.uuid4(),
            "program_id": program_id,
            "program_version": 1,
            "referrer_id": referrer_id,
            "side": "referrer",
            "recipient": str(referrer_id),
            "amount": 2000,
            "unit": "USD",
            "issued_at": NOW,
            **extra,
        }
    )


async def test_a_coupon_code_is_in_the_reward_message_and_milestone_grants_are_not_repeated(
    world: World,
) -> None:
    program_id = await world.program()
    ada = await world.enrol(program_id, email="ada@example.com")
    await world.apply(_reward(program_id, ada.participant_id, coupon_code="SAVE20-XK2P"))
    await world.apply(
        _reward(program_id, ada.participant_id, rule="milestone:5", unit="PERK", amount=1)
    )
    items = await world.pool.fetch("SELECT kind, body FROM notifications ORDER BY created_at")
    assert [i["kind"] for i in items] == ["welcome", "reward_issued"]
    assert items[1]["body"] == "You earned $20.00 for a referral. Your code: SAVE20-XK2P"


async def test_a_reward_handled_before_the_enrolment_waits_for_it(world: World) -> None:
    """Topics are not ordered with each other: the reward can come first. Its message waits
    (as the same event) until the enrolment tells the address and the language."""
    program_id = await world.program()
    participant_id = uuid.uuid4()
    reward = _reward(program_id, participant_id)
    env = await world.apply(reward)
    assert not await world.deliveries(participant_id=participant_id)
    await world.pool.execute("UPDATE reminders SET due_at = now()")
    await reminders.run_due(world.pool, world.context)  # still unknown: looks again later
    [waiting] = await world.pool.fetch("SELECT data, done_at FROM reminders")
    assert waiting["done_at"] is None and waiting["data"]["tries"] == 1
    await world.apply(
        ParticipantEnrolled(
            participant_id=participant_id,
            program_id=program_id,
            external_user_id="late",
            code="LATE000001",
            link_url="https://ref.example.com/r/LATE000001",
            email="late@example.com",
            locale="ar",
            enrolled_at=NOW,
        )
    )
    await world.pool.execute("UPDATE reminders SET due_at = now() WHERE kind = 'deferred'")
    await reminders.run_due(world.pool, world.context)
    rows = await world.deliveries(trigger="reward_issued")
    assert {(r["channel"], str(r["event_id"])) for r in rows} == {
        ("in_app", env.id),
        ("email", env.id),
    }
    await world.send_all()
    subjects = sorted(m["Subject"] for m in world.smtp.to("late@example.com"))
    assert subjects == sorted(["مرحبًا بك في برنامج الإحالة", "لقد ربحت مكافأة"])
