"""Transactional outbox: an event is written in the same transaction as the business change
that caused it, with the trace context of that moment, and relayed later."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar

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


# The parameters of one outbox row: event id, topic, key, headers, payload.
OutboxRow = tuple[str, str, str | None, dict[str, str], bytes]


def outbox_insert_from(first: int, source: str) -> str:
    """For a caller that writes its business row and the event in one statement: an INSERT
    of the outbox row from parameters ``$first`` .. ``$first+4`` (an ``OutboxRow``), written
    only if the CTE named ``source`` returned a row (``INSERT ... ON CONFLICT DO NOTHING
    RETURNING ...``)."""
    params = ", ".join(f"${first + i}" for i in range(5))
    return (
        f"INSERT INTO outbox (event_id, topic, key, headers, payload) SELECT {params} FROM {source}"
    )


def outbox_row(event: Event, *, source: str) -> OutboxRow:
    """The outbox row of ``event``, with the trace context of this moment."""
    env = envelope_for(event, source)
    headers = {k: v.decode() for k, v in env.headers()}
    return env.id, event.TOPIC, event.key(), headers, env.data


def outbox_rows(events: Sequence[Event], *, source: str) -> list[OutboxRow]:
    """The outbox rows of many events written at one moment (a batch): the envelope's
    attributes that do not vary (time, source, trace context) are made once for all."""
    common = Envelope(type="", source=source, data=b"", trace=inject_context())
    fixed = {k: v.decode() for k, v in common.headers() if k not in ("ce_id", "ce_type")}
    rows: list[OutboxRow] = []
    for event in events:
        event_id = str(uuid.uuid4())
        headers = {**fixed, "ce_id": event_id, "ce_type": event.TYPE}
        if (subject := event.subject()) is not None:
            headers["ce_subject"] = subject
        rows.append((event_id, event.TOPIC, event.key(), headers, event.model_dump_json().encode()))
    return rows


# Rows enqueued on this connection while ``batched`` is active, written when it ends.
_pending: ContextVar[tuple[asyncpg.Connection, list[OutboxRow]] | None] = ContextVar(
    "outbox_pending", default=None
)


@contextlib.asynccontextmanager
async def batched(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Collect the events enqueued on ``conn`` inside the block and write them, in order, in
    one statement when the block ends without an error (still inside the caller's
    transaction). Not across savepoints: a rolled-back savepoint would keep its rows."""
    rows: list[OutboxRow] = []
    token = _pending.set((conn, rows))
    try:
        yield
    finally:
        _pending.reset(token)
    await enqueue_many(conn, rows)


async def enqueue(conn: asyncpg.Connection, event: Event, *, source: str) -> str:
    """Write ``event`` to the outbox; the caller's transaction decides whether it is sent."""
    row = outbox_row(event, source=source)
    pending = _pending.get()
    if pending is not None and pending[0] is conn:
        pending[1].append(row)
        return row[0]
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, key, headers, payload) VALUES ($1, $2, $3, $4, $5)",
        *row,
    )
    return row[0]


async def enqueue_many(conn: asyncpg.Connection, rows: list[OutboxRow]) -> None:
    """Several outbox rows in one statement (in this order: ``id`` keeps per-key order)."""
    if not rows:
        return
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, key, headers, payload) "
        "SELECT event_id, topic, key, headers::jsonb, payload FROM unnest("
        "$1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[]) WITH ORDINALITY "
        "AS r (event_id, topic, key, headers, payload, n) ORDER BY n",
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [json.dumps(r[3]) for r in rows],
        [r[4] for r in rows],
    )
