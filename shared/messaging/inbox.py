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
