"""The read models rebuild from the topics: what the running links service projected from
events on the real broker equals, row for row, what a new consumer group projects into an
EMPTY links database (fresh migrations) by replaying every topic from the earliest offset."""

from __future__ import annotations

import asyncio
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.links.insights.projector import (
    HANDLERS,
    ClickCounter,
    ReadModelProjector,
    on_clicked,
)
from shared.contracts import LinkClicked
from shared.messaging.outbox import envelope_for
from tests.integration.kafka_helpers import migrated, running
from tests.integration.links.analytics_story import snapshot
from tests.integration.links.conftest import Links
from tests.integration.links.test_links_insights_api import _story_program


async def _wait_equal(pool: asyncpg.Pool, expected: dict[str, object], timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        got = await snapshot(pool)
        if got == expected or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.2)


async def test_replaying_the_topics_into_an_empty_database_rebuilds_the_same_tables(
    links: Links, pg_server_url: str
) -> None:
    made, story = await _story_program(links)
    # Redeliveries on the broker (the same events, same ids) change nothing.
    producer = links.app.state.runtime.producer
    from tests.integration.links.analytics_story import referrals

    for event in referrals(story)[:3]:
        env = envelope_for(event, "/test")
        for _ in range(2):
            await producer.send_and_wait(
                event.TOPIC, value=env.data, key=event.key().encode(), headers=env.headers()
            )

    # The running service's projection, once it has everything.
    pool = links.app.state.runtime.pool

    async def settled() -> dict:
        before = await snapshot(pool)
        await asyncio.sleep(1.0)
        after = await snapshot(pool)
        return after if after == before else {}

    deadline = time.monotonic() + 30
    live: dict = {}
    while time.monotonic() < deadline:
        live = await settled()
        counts = {t: len(rows) for t, rows in live.items()}
        if counts == {
            "rm_participants": 2, "rm_shares": 2, "rm_clicks_daily": 2, "rm_referrals": 3,
            "rm_conversions": 2, "rm_rewards": 4, "rm_milestones": 1,
        }:  # fmt: skip
            break
    assert {t: len(rows) for t, rows in live.items()}["rm_rewards"] == 4, live
    clicks = {r["participant_id"]: r for r in live["rm_clicks_daily"]}
    a = clicks[uuid.UUID(made["a"]["id"])]
    assert (a["clicks"], a["attributable"], a["invites"]) == (4, 3, 2)

    # An empty database, migrated from scratch; a new consumer group reads from the start.
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = urlunsplit(urlsplit(pg_server_url)._replace(path=f"/{name}"))
    try:
        await migrated(dsn, "links")
        rebuilt_pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
        settings = links.settings
        common = {
            "pool": rebuilt_pool,
            "producer": producer,
            "bootstrap_servers": settings.kafka_bootstrap_servers,
            "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
            "session_timeout_ms": settings.kafka_session_timeout_ms,
            "retry_backoff_s": 0.01,
        }
        rebuild = ReadModelProjector(name="links-rebuild", handlers=HANDLERS, **common)  # type: ignore[arg-type]
        click_rebuild = ClickCounter(
            handlers={LinkClicked.TOPIC: on_clicked}, name="links-rebuild-clicks", **common
        )  # type: ignore[arg-type]
        try:
            async with running(rebuild.run), running(click_rebuild.run):
                rebuilt = await _wait_equal(rebuilt_pool, live, timeout_s=30)
            for table in live:
                assert rebuilt[table] == live[table], table
            # The new database holds no copy of the links tables: only the events made it.
            assert await rebuilt_pool.fetchval("SELECT count(*) FROM participants") == 0
        finally:
            await rebuilt_pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
