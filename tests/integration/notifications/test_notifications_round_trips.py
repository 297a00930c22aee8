"""What a conversion costs the consumer in statements, and that the fewer statements record the
same rows: the participant's message, its webhooks and the progress count written together,
templates never cached (a change is seen by the next message)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from shared.contracts import ProgramPublished, ReferralConverted, RewardIssued
from shared.contracts.base import Event
from shared.messaging.outbox import envelope_for
from tests.integration.notifications.conftest import NOW, World


def _converted(program_id: uuid.UUID, referrer_id: uuid.UUID, sequence: int = 1) -> Event:
    return ReferralConverted(
        conversion_id=uuid.uuid4(),
        referral_id=uuid.uuid4(),
        program_id=program_id,
        referrer_id=referrer_id,
        referee_customer_id="cust-1",
        order_id=f"o-{uuid.uuid4().hex[:6]}",
        amount=5000,
        currency="USD",
        converted_at=NOW,
        program_version=1,
        sequence=sequence,
    )


def _reward(program_id: uuid.UUID, referrer_id: uuid.UUID, side: str) -> Event:
    return RewardIssued.model_validate(
        {
            "reward_id": uuid.uuid4(),
            "conversion_id": uuid.uuid4(),
            "referral_id": uuid.uuid4(),
            "program_id": program_id,
            "program_version": 1,
            "referrer_id": referrer_id,
            "side": side,
            "recipient": str(referrer_id) if side == "referrer" else "cust-1",
            "amount": 2000,
            "unit": "USD",
            "issued_at": NOW,
            "rule": "base",
        }
    )


async def _statements(world: World, event: Event) -> int:
    """Apply as the consumer does, counting the handler's statements."""
    sent: list[Any] = []
    async with world.pool.acquire() as conn:
        conn.add_query_logger(sent.append)
        try:
            async with conn.transaction():
                await world.handlers[event.TOPIC](conn, event, envelope_for(event, "/test"))
        finally:
            conn.remove_query_logger(sent.append)
    return len(sent) - 2  # BEGIN and COMMIT


async def test_a_conversion_takes_five_statements_and_records_every_row(world: World) -> None:
    program_id = await world.program()
    endpoint_id, _ = await world.endpoint(program_id, "https://hooks.example.com/in")
    ada = await world.enrol(program_id, email="ada@example.com")
    referrer = ada.participant_id
    # Reading the referrer (with preferences, caps and templates), then writing every row.
    assert await _statements(world, _converted(program_id, referrer)) == 2
    # The program version's definition is cached: it never changes once published.
    assert await _statements(world, _reward(program_id, referrer, "referrer")) == 2
    assert await _statements(world, _reward(program_id, referrer, "referee")) == 1

    rows = await world.deliveries(participant_id=referrer)
    by_trigger: dict[str, list[str]] = {}
    for row in rows:
        by_trigger.setdefault(row["trigger"], []).append(row["channel"])
    assert sorted(by_trigger["referral_converted"]) == ["email"]
    assert sorted(by_trigger["reward_issued"]) == ["email", "in_app"]
    assert by_trigger["referral.converted"] == ["webhook"]
    assert by_trigger["reward.issued"] == ["webhook", "webhook"]  # both sides
    webhooks = [r for r in rows if r["channel"] == "webhook"]
    assert {r["endpoint_id"] for r in webhooks} == {endpoint_id}
    assert {r["recipient_key"] for r in webhooks} == {str(endpoint_id)}
    assert {r["status"] for r in rows if r["channel"] != "in_app"} == {"pending"}
    feed = await world.pool.fetch(
        "SELECT kind FROM notifications WHERE participant_id = $1 ORDER BY created_at", referrer
    )
    assert [f["kind"] for f in feed] == ["welcome", "reward_issued"]
    converted = await world.pool.fetchval(
        "SELECT converted FROM participant_progress WHERE participant_id = $1", referrer
    )
    assert converted == 1


async def test_a_repeat_purchase_is_not_counted(world: World) -> None:
    program_id = await world.program()
    ada = await world.enrol(program_id, email="ada@example.com")
    await world.apply(_converted(program_id, ada.participant_id))
    await world.apply(_converted(program_id, ada.participant_id, sequence=2))
    converted = await world.pool.fetchval(
        "SELECT converted FROM participant_progress WHERE participant_id = $1",
        ada.participant_id,
    )
    assert converted == 1
    emails = await world.deliveries(trigger="referral_converted", channel="email")
    assert len(emails) == 2


async def test_a_conversion_before_the_enrolment_is_counted_and_its_webhook_kept(
    world: World,
) -> None:
    program_id = await world.program()
    endpoint_id, _ = await world.endpoint(program_id, "https://hooks.example.com/in")
    stranger = uuid.uuid4()
    await world.apply(_converted(program_id, stranger))
    converted = await world.pool.fetchval(
        "SELECT converted FROM participant_progress WHERE participant_id = $1", stranger
    )
    assert converted == 1
    rows = await world.deliveries(participant_id=stranger)
    assert [(r["channel"], r["endpoint_id"]) for r in rows] == [("webhook", endpoint_id)]
    kinds = await world.pool.fetch("SELECT kind FROM reminders WHERE participant_id = $1", stranger)
    assert [k["kind"] for k in kinds] == ["deferred"]


async def test_a_template_change_is_seen_by_the_next_message(world: World) -> None:
    program_id = await world.program()
    ada = await world.enrol(program_id, email="ada@example.com")
    for subject in ("First words for {{ name or 'you' }}", "Second words"):
        await world.pool.execute(
            "INSERT INTO templates (program_id, trigger, locale, subject, body) "
            "VALUES ($1, 'reward_issued', 'en', $2, 'Body') ON CONFLICT "
            "(program_id, trigger, locale, variant) DO UPDATE SET subject = excluded.subject",
            program_id,
            subject,
        )
        await world.apply(_reward(program_id, ada.participant_id, "referrer"))
    titles = await world.pool.fetch(
        "SELECT title FROM notifications WHERE kind = 'reward_issued' ORDER BY created_at"
    )
    assert sorted(t["title"] for t in titles) == ["First words for you", "Second words"]


async def _apply_in(conn: Any, world: World, *events: Event) -> None:
    for event in events:
        await world.handlers[event.TOPIC](conn, event, envelope_for(event, "/test"))


@pytest.mark.parametrize("publication_first", [True, False])
async def test_a_publication_and_a_first_conversion_in_concurrent_batches_nudge_once(
    world: World, publication_first: bool
) -> None:
    """The consumer applies partitions concurrently, one transaction each: neither sees the
    other's uncommitted rows, whichever commits first."""
    program_id, referrer = uuid.uuid4(), uuid.uuid4()
    published = ProgramPublished.model_validate(
        {
            "program_id": program_id,
            "version": 1,
            "effective_from": NOW,
            "name": "Concurrent",
            "definition": {
                "destination_url": "https://shop.example.com/",
                "rewards": {"milestones": [{"threshold": 2, "perk": "Invitation"}]},
            },
        }
    )
    first, second = (
        ([published], [_converted(program_id, referrer)])
        if publication_first
        else ([_converted(program_id, referrer)], [published])
    )
    async with world.pool.acquire() as one, world.pool.acquire() as two:
        tx = one.transaction()
        await tx.start()
        await _apply_in(one, world, *first)

        async def other() -> None:
            async with two.transaction():
                await _apply_in(two, world, *second)

        waiting = asyncio.create_task(other())
        await asyncio.sleep(0.3)  # the other batch is under way, its rows unseen
        await tx.commit()
        await asyncio.wait_for(waiting, 10)
    nudges = await world.pool.fetch(
        "SELECT dedupe FROM reminders WHERE kind = 'milestone_nudge' AND participant_id = $1",
        referrer,
    )
    assert [n["dedupe"] for n in nudges] == ["2"]
