"""Inbox: remember which events a consumer has applied, in the same transaction as the effects."""

from __future__ import annotations

import asyncpg


async def first_delivery(
    conn: asyncpg.Connection, consumer: str, event_id: str, topic: str
) -> bool:
    """Record the event for ``consumer``; False means it was applied before and must be skipped."""
    inserted = await conn.fetchval(
        "INSERT INTO processed_events (consumer, event_id, topic) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        event_id,
        topic,
    )
    return bool(inserted)


async def first_deliveries(
    conn: asyncpg.Connection, consumer: str, events: list[tuple[str, str]]
) -> set[str]:
    """``first_delivery`` for a batch of (event id, topic) in one statement: the ids seen for
    the first time (an id twice in the batch is returned once)."""
    rows = await conn.fetch(
        "INSERT INTO processed_events (consumer, event_id, topic) "
        "SELECT $1, e, t FROM unnest($2::uuid[], $3::text[]) AS u (e, t) "
        "ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        [e for e, _ in events],
        [t for _, t in events],
    )
    return {str(r["event_id"]) for r in rows}
