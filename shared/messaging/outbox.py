"""Transactional outbox: an event is written in the same transaction as the business change
that caused it, with the trace context of that moment, and relayed later."""

from __future__ import annotations

import asyncpg

from shared.contracts.base import Event
from shared.messaging.envelope import Envelope
from shared.telemetry import inject_context


def envelope_for(event: Event, source: str) -> Envelope:
    return Envelope(
        type=event.TYPE,
        source=source,
        subject=event.subject(),
        data=event.model_dump_json().encode(),
        trace=inject_context(),
    )


async def enqueue(conn: asyncpg.Connection, event: Event, *, source: str) -> str:
    """Write ``event`` to the outbox; the caller's transaction decides whether it is sent."""
    env = envelope_for(event, source)
    headers = {k: v.decode() for k, v in env.headers()}
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, key, headers, payload) VALUES ($1, $2, $3, $4, $5)",
        env.id,
        event.TOPIC,
        event.key(),
        headers,
        env.data,
    )
    return env.id
