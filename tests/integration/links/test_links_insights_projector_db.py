"""The analytics projector on a real Postgres, through the consumers' own batch path: a
duplicate delivery counts once, and any order of the events gives the same rows."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from services.links.insights.projector import (
    HANDLERS,
    ClickCounter,
    ReadModelProjector,
    on_clicked,
)
from shared.contracts import LinkClicked
from shared.contracts.base import Event
from shared.messaging.consumer import EventConsumer
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import envelope_for
from tests.integration.kafka_helpers import migrated
from tests.integration.links.analytics_story import all_events, new_story, snapshot


def _record(env: Envelope, event: Event, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        event.TOPIC, 0, offset, 0, 0, event.key().encode(), env.data, None, 0, len(env.data),
        env.headers(),
    )  # fmt: skip


class _NoProducer:
    async def send_and_wait(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("nothing in these tests may be dead-lettered")


async def _fresh_db(pg_server_url: str) -> tuple[str, str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = urlunsplit(urlsplit(pg_server_url)._replace(path=f"/{name}"))
    await migrated(dsn, "links")
    return name, dsn


@pytest.fixture
async def pools(pg_server_url: str) -> AsyncIterator[list[asyncpg.Pool]]:
    """Two empty, migrated links databases."""
    made = [await _fresh_db(pg_server_url) for _ in range(2)]
    opened = [await asyncpg.create_pool(dsn, min_size=1, max_size=2) for _, dsn in made]
    try:
        yield opened
    finally:
        for pool in opened:
            await pool.close()
        admin = await asyncpg.connect(pg_server_url)
        for name, _ in made:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _apply(
    pool: asyncpg.Pool,
    deliveries: list[tuple[Envelope, Event]],
    *,
    batch: int = 5,
    one_by_one: bool = False,
) -> None:
    """Through the real consumers' ``process``: clicks by the batch counter, the rest by the
    read-model projector (a whole batch in one projection; ``one_by_one``: the per-message
    handlers its split batches fall back to), in batches of ``batch`` in the given order."""
    kwargs = {"pool": pool, "producer": _NoProducer(), "bootstrap_servers": "unused:9092"}
    consumer = EventConsumer if one_by_one else ReadModelProjector
    shared = consumer(name="links", handlers=HANDLERS, **kwargs)  # type: ignore[arg-type]
    clicks = ClickCounter(handlers={LinkClicked.TOPIC: on_clicked}, name="links-clicks", **kwargs)  # type: ignore[arg-type]
    records = [_record(env, ev, i) for i, (env, ev) in enumerate(deliveries)]
    for start in range(0, len(records), batch):
        part = records[start : start + batch]
        click_batch = [r for r in part if r.topic == LinkClicked.TOPIC]
        other = [r for r in part if r.topic != LinkClicked.TOPIC]
        if click_batch:
            await clicks.process(click_batch)
        if other:
            if one_by_one:
                await shared.process_one_by_one(other)
            else:
                await shared.process(other)


async def test_duplicates_count_once_and_the_order_does_not_matter(
    pools: list[asyncpg.Pool],
) -> None:
    story = new_story()
    deliveries = [(envelope_for(ev, "/test"), ev) for ev in all_events(story)]

    # Database 1: the story in order, every event delivered twice (the second time in a
    # later batch, and some twice within one batch).
    twice = [d for d in deliveries for _ in range(2)] + deliveries[::3]
    await _apply(pools[0], twice)
    # Database 2: once each, backwards: reward.issued before reward.created, converted
    # before signed_up, the refund before the conversion, the erasure-free rest shuffled;
    # one message at a time, as a batch split by a failing message is applied.
    backwards = list(reversed(deliveries))
    await _apply(pools[1], backwards, one_by_one=True)

    first, second = await snapshot(pools[0]), await snapshot(pools[1])
    assert first == second

    # And the rows are the hand-counted ones (see analytics_story).
    clicks = {(r["participant_id"], r["day"]): r for r in first["rm_clicks_daily"]}
    a_day = clicks[(story.a, story.day)]
    assert (a_day["clicks"], a_day["attributable"], a_day["invites"]) == (4, 3, 2)
    b_day = clicks[(story.b, story.at(1, 0).date())]
    assert (b_day["clicks"], b_day["attributable"], b_day["invites"]) == (1, 1, 1)
    assert len(first["rm_shares"]) == 2
    referrals = {r["referral_id"]: r for r in first["rm_referrals"]}
    r2 = referrals[story.id("r2")]
    assert r2["reject_rules"] == ["velocity"]  # the shadow rule only observed
    assert r2["flag_rules"] == ["velocity"]
    assert referrals[story.id("r1")]["signed_up_at"] == story.at(0, 11)
    conversions = {r["conversion_id"]: r for r in first["rm_conversions"]}
    c3 = conversions[story.id("c3")]
    assert c3["refunded"] == 4000  # once, although delivered twice
    assert c3["reversed_at"] == story.at(1, 15) and c3["converted_at"] == story.at(1, 12)
    rewards = {r["reward_id"]: r for r in first["rm_rewards"]}
    w3 = rewards[story.id("w3")]
    assert (w3["initial_status"], w3["issued_amount"], w3["reversed_amount"]) == (
        "issued", 2000, 2000,
    )  # fmt: skip
    assert rewards[story.id("w4")]["failure_reason"] == "webhook"
    inbox = await pools[0].fetchval("SELECT count(*) FROM processed_events")
    assert inbox == len(deliveries)


async def test_any_interleaving_gives_the_same_rows(pools: list[asyncpg.Pool]) -> None:
    story = new_story()
    deliveries = [(envelope_for(ev, "/test"), ev) for ev in all_events(story)]
    shuffled = deliveries[:]
    random.Random(8).shuffle(shuffled)
    await _apply(pools[0], deliveries, one_by_one=True)
    # The whole story in one batch: one statement per table and round, several facts about
    # one row (a reward created, issued and reversed) merged by Postgres round after round.
    await _apply(pools[1], shuffled * 2, batch=len(shuffled) * 2)
    assert await snapshot(pools[0]) == await snapshot(pools[1])


async def test_an_erasure_forgets_the_referees_whenever_it_arrives(
    pools: list[asyncpg.Pool],
) -> None:
    from datetime import UTC, datetime

    from shared.contracts import ParticipantErased

    story = new_story()
    erased = ParticipantErased(
        participant_id=story.a, program_id=story.program_id, erased_at=datetime.now(UTC)
    )
    deliveries = [(envelope_for(ev, "/test"), ev) for ev in all_events(story)]
    erasure = (envelope_for(erased, "/test"), erased)
    await _apply(pools[0], [*deliveries, erasure])
    await _apply(pools[1], [erasure, *deliveries])
    first = await snapshot(pools[0])
    assert first == await snapshot(pools[1])
    of_a = [r for r in first["rm_referrals"] if r["referrer_id"] == story.a]
    assert of_a and all(r["referee_customer_id"] is None for r in of_a)
    referee_rewards = [
        r for r in first["rm_rewards"] if r["referrer_id"] == story.a and r["side"] == "referee"
    ]
    assert referee_rewards and all(r["recipient"] is None for r in referee_rewards)
    # B was not erased: B's friend is still known.
    assert any(r["referee_customer_id"] == "customer-0003" for r in first["rm_referrals"])


async def test_a_malformed_click_is_dead_lettered_and_the_batch_still_counts(
    pools: list[asyncpg.Pool],
) -> None:
    class Recorder:
        sent: list[tuple[str, dict[str, bytes]]] = []

        async def send_and_wait(self, topic: str, **kwargs: object) -> None:
            self.sent.append((topic, dict(kwargs["headers"])))  # type: ignore[call-overload]

    story = new_story()
    good = [ev for ev in all_events(story) if isinstance(ev, LinkClicked)]
    records = [_record(envelope_for(ev, "/t"), ev, i) for i, ev in enumerate(good)]
    bad = ConsumerRecord(LinkClicked.TOPIC, 0, 99, 0, 0, b"k", b"{not json", None, 0, 9, [])
    counter = ClickCounter(
        handlers={LinkClicked.TOPIC: on_clicked},
        name="links-clicks", pool=pools[0], producer=Recorder(),  # type: ignore[arg-type]
        bootstrap_servers="unused:9092",
    )  # fmt: skip
    await counter.process([records[0], bad, *records[1:]])
    assert [topic for topic, _ in Recorder.sent] == ["link.clicked.dlq"]
    assert Recorder.sent[0][1]["dlq_consumer"] == b"links-clicks"
    total = await pools[0].fetchval("SELECT sum(clicks) FROM rm_clicks_daily")
    assert total == len(good) == 5
