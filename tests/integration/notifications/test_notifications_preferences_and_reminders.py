"""Preferences, the signed unsubscribe link, frequency caps, reminders claimed by the
scheduler, milestone nudges, held rewards, ops messages and erasure."""

from __future__ import annotations

import asyncio
import uuid

from services.notifications import reminders
from services.notifications.participants import erase
from services.notifications.unsubscribe import make_token, read_token
from shared.contracts import (
    LinkClicked,
    ParticipantErased,
    ProgramPublished,
    ReferralConverted,
    RewardFailed,
    RewardIssued,
)
from tests.integration.notifications.conftest import NOW, World


def _click(program_id: uuid.UUID, participant_id: uuid.UUID) -> LinkClicked:
    return LinkClicked(
        click_id=uuid.uuid4(),
        code="ABCDEFGH23",
        program_id=program_id,
        participant_id=participant_id,
        clicked_at=NOW,
    )


def _converted(program_id: uuid.UUID, referrer_id: uuid.UUID) -> ReferralConverted:
    return ReferralConverted(
        conversion_id=uuid.uuid4(),
        referral_id=uuid.uuid4(),
        program_id=program_id,
        referrer_id=referrer_id,
        referee_customer_id=f"c-{uuid.uuid4().hex[:6]}",
        order_id=f"o-{uuid.uuid4().hex[:6]}",
        amount=1000,
        currency="EUR",
        converted_at=NOW,
    )


async def _due_now(world: World) -> None:
    await world.pool.execute("UPDATE reminders SET due_at = now() WHERE done_at IS NULL")


async def test_share_reminder_only_without_clicks(world: World) -> None:
    program_id = await world.program({"notifications": {"share_reminder_days": 2}})
    quiet = await world.enrol(program_id, email="quiet@example.com")
    busy = await world.enrol(program_id, email="busy@example.com")
    await world.apply(_click(program_id, busy.participant_id))
    due = await world.pool.fetchval("SELECT min(due_at) - now() FROM reminders")
    assert due.days == 1  # two days ahead (minus the seconds of the test)
    assert await reminders.run_due(world.pool, world.context) == 0  # not due yet
    await _due_now(world)
    assert await reminders.run_due(world.pool, world.context) == 2
    outcomes = {
        r["participant_id"]: r["outcome"]
        for r in await world.pool.fetch("SELECT participant_id, outcome FROM reminders")
    }
    assert outcomes[quiet.participant_id] == "sent"
    assert outcomes[busy.participant_id] == "link already clicked (1)"
    await world.send_all()
    [reminder] = [m for m in world.smtp.to("quiet@example.com") if "waiting" in m["Subject"]]
    assert reminder["List-Unsubscribe"]
    assert not [m for m in world.smtp.to("busy@example.com") if "waiting" in m["Subject"]]


async def test_two_schedulers_take_each_reminder_once(world: World) -> None:
    program_id = await world.program()
    for i in range(20):
        await world.enrol(program_id, email=f"p{i}@example.com")
    await _due_now(world)
    taken = await asyncio.gather(
        *(reminders.run_due(world.pool, world.context, limit=7) for _ in range(4))
    )
    while sum(taken) < 20:
        taken.append(await reminders.run_due(world.pool, world.context))
    assert sum(taken) == 20
    rows = await world.deliveries(trigger="share_reminder", channel="email")
    assert len(rows) == 20


async def test_unsubscribe_link_and_frequency_cap(world: World) -> None:
    program_id = await world.program({"notifications": {"marketing_per_day": 1}})
    ada = await world.enrol(program_id, email="ada@example.com")
    key = world.settings.unsubscribe_key()
    token = make_token(key, ada.participant_id, "marketing")
    assert read_token(key, token) == (ada.participant_id, "marketing")
    assert read_token(key, token[:-2] + "xx") is None
    assert read_token(b"other", token) is None
    # Two marketing messages in a day: the second is capped.
    await world.pool.execute(
        "UPDATE reminders SET due_at = now(), dedupe = 'a' WHERE participant_id = $1",
        ada.participant_id,
    )
    await reminders.run_due(world.pool, world.context)
    await world.pool.execute(
        "INSERT INTO reminders (id, program_id, participant_id, kind, dedupe, due_at) "
        "VALUES ($1, $2, $3, 'share_reminder', 'b', now())",
        uuid.uuid4(),
        program_id,
        ada.participant_id,
    )
    await reminders.run_due(world.pool, world.context)
    rows = await world.deliveries(trigger="share_reminder", channel="email")
    assert [r["status"] for r in rows] == ["pending", "skipped"]
    assert rows[1]["reason"] == "frequency cap: 1 marketing emails per 24 hours"
    # Unsubscribed from marketing: skipped, and says why; transactional still goes.
    await world.pool.execute(
        "INSERT INTO preferences (participant_id, program_id, category, subscribed, source) "
        "VALUES ($1, $2, 'marketing', false, 'link')",
        ada.participant_id,
        program_id,
    )
    await world.pool.execute(
        "INSERT INTO reminders (id, program_id, participant_id, kind, dedupe, due_at) "
        "VALUES ($1, $2, $3, 'share_reminder', 'c', now())",
        uuid.uuid4(),
        program_id,
        ada.participant_id,
    )
    await reminders.run_due(world.pool, world.context)
    last = (await world.deliveries(trigger="share_reminder", channel="email"))[-1]
    assert last["reason"] == "unsubscribed from marketing messages"


async def test_one_away_from_a_milestone(world: World) -> None:
    program_id = await world.program(
        {"rewards": {"milestones": [{"threshold": 3, "perk": "Invitation"}]}}
    )
    ada = await world.enrol(program_id, email="ada@example.com")
    await world.apply(_converted(program_id, ada.participant_id))
    await reminders.run_due(world.pool, world.context)
    assert not await world.deliveries(trigger="milestone_nudge")
    await world.apply(_converted(program_id, ada.participant_id))
    await reminders.run_due(world.pool, world.context)
    rows = await world.deliveries(trigger="milestone_nudge", channel="in_app")
    assert len(rows) == 1
    [item] = await world.pool.fetch("SELECT body FROM notifications WHERE kind = 'milestone_nudge'")
    assert "2 successful referrals" in item["body"] and "at 3" in item["body"]


async def test_a_released_held_reward_says_it_is_available(world: World) -> None:
    program_id = await world.program(
        {"rewards": {"referrer": {"amount": 2000, "unit": "USD"}, "hold_days": 14}}
    )
    ada = await world.enrol(program_id, email="ada@example.com", locale="lv")
    await world.apply(
        RewardIssued(
            reward_id=uuid.uuid4(),
            conversion_id=uuid.uuid4(),
            referral_id=uuid.uuid4(),
            program_id=program_id,
            program_version=1,
            referrer_id=ada.participant_id,
            side="referrer",
            recipient=str(ada.participant_id),
            amount=2000,
            unit="USD",
            issued_at=NOW,
        )
    )
    [item] = await world.pool.fetch(
        "SELECT title, body FROM notifications WHERE kind = 'reward_available'"
    )
    assert item["title"] == "Jūsu gaidošā atlīdzība tagad ir pieejama"
    assert "20,00\xa0$" in item["body"]


async def test_ops_get_failed_rewards(world: World) -> None:
    program_id = await world.program({"notifications": {"ops_emails": ["ops@example.com"]}})
    await world.apply(
        RewardFailed(
            reward_id=uuid.uuid4(),
            program_id=program_id,
            referrer_id=uuid.uuid4(),
            side="referrer",
            recipient="x",
            amount=500,
            unit="USD",
            reason="coupon pool empty",
            failed_at=NOW,
        )
    )
    await world.send_all()
    [mail] = world.smtp.to("ops@example.com")
    assert mail["Subject"] == "[ops] A reward could not be delivered"
    assert "coupon pool empty" in mail.get_body(("plain",)).get_content()
    assert mail["List-Unsubscribe"] is None


async def test_erasure_drops_personal_data_and_keeps_the_log(world: World) -> None:
    program_id = await world.program()
    ada = await world.enrol(program_id, email="ada@example.com")
    await world.send_all()
    await world.apply(
        ParticipantErased(participant_id=ada.participant_id, program_id=program_id, erased_at=NOW)
    )
    row = await world.pool.fetchrow(
        "SELECT email, name, erased_at FROM participants WHERE participant_id = $1",
        ada.participant_id,
    )
    assert row["email"] is None and row["name"] is None and row["erased_at"] is not None
    logs = await world.deliveries(participant_id=ada.participant_id)
    assert logs and all(r["address"] is None and r["payload"] == {} for r in logs)
    assert {r["status"] for r in logs if r["channel"] == "email"} == {"sent"}
    assert not await world.pool.fetch(
        "SELECT 1 FROM notifications WHERE participant_id = $1", ada.participant_id
    )
    # A late redelivery of the enrolment does not bring the address back.
    await erase_again_then_reenrol(world, ada)


async def erase_again_then_reenrol(world: World, enrolled: object) -> None:
    from shared.contracts import ParticipantEnrolled

    assert isinstance(enrolled, ParticipantEnrolled)
    async with world.pool.acquire() as conn:
        await erase(conn, enrolled.participant_id, enrolled.program_id)
    await world.apply(enrolled)
    email = await world.pool.fetchval(
        "SELECT email FROM participants WHERE participant_id = $1", enrolled.participant_id
    )
    assert email is None
    pending = await world.deliveries(participant_id=enrolled.participant_id, status="pending")
    assert pending == []
    assert not await world.pool.fetch(
        "SELECT 1 FROM reminders WHERE participant_id = $1 AND done_at IS NULL",
        enrolled.participant_id,
    )


async def test_a_program_published_after_its_participants_events_catches_up(
    world: World,
) -> None:
    """Topics are not ordered with each other: the enrolment and a conversion can be handled
    before the program's own event. Its delay and its milestones then apply on arrival."""
    program_id = uuid.uuid4()
    ada = await world.enrol(program_id, email="ada@example.com")
    default_due = await world.pool.fetchval("SELECT due_at FROM reminders")
    await world.apply(_converted(program_id, ada.participant_id))
    assert not await world.pool.fetch("SELECT 1 FROM reminders WHERE kind = 'milestone_nudge'")
    await world.apply(
        ProgramPublished.model_validate(
            {
                "program_id": program_id,
                "version": 1,
                "effective_from": NOW,
                "name": "Late",
                "definition": {
                    "destination_url": "https://shop.example.com/",
                    "rewards": {"milestones": [{"threshold": 2, "perk": "Mug"}]},
                    "notifications": {"share_reminder_days": 1},
                },
            }
        )
    )
    due = await world.pool.fetchval("SELECT due_at FROM reminders WHERE kind = 'share_reminder'")
    assert (default_due - due).total_seconds() == 2 * world.settings.notify_reminder_day_s
    await reminders.run_due(world.pool, world.context)
    [nudge] = await world.deliveries(trigger="milestone_nudge", channel="email")
    assert nudge["status"] == "pending"
