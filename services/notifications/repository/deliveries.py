"""The delivery log: one ``deliveries`` row per intended message, unique on (event, recipient,
channel), and its ``delivery_attempts``. Recording writes rows in the consumer's transaction;
delivery claims due rows and records outcomes; the API reads the log and asks for redelivery."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.notifications.repository import Conn

# ---- recording intended messages (the consumer's transaction) ----


@dataclass(frozen=True)
class Fanout:
    """An event for the program's webhook endpoints, written with the participant's rows."""

    program_id: UUID
    event_type: str
    payload: dict[str, Any]
    participant_id: UUID | None


@dataclass(frozen=True)
class ChannelRow:
    """One channel of a participant's message: its payload, address, status and reason."""

    channel: str
    payload: dict[str, Any]
    address: str | None
    status: str
    reason: str | None


async def record_ops_email(
    conn: asyncpg.Connection,
    *,
    event_id: UUID,
    program_id: UUID,
    recipient_key: str,
    trigger: str,
    payload: dict[str, Any],
    address: str,
) -> None:
    """A pending email to an ops address, once per (event, recipient)."""
    await conn.execute(
        "INSERT INTO deliveries (id, event_id, program_id, participant_id, recipient_key, "
        "channel, trigger, category, payload, address, status) "
        "VALUES ($1, $2, $3, NULL, $4, 'email', $5, 'transactional', $6, $7, 'pending') "
        "ON CONFLICT (event_id, recipient_key, channel) DO NOTHING",
        uuid.uuid4(),
        event_id,
        program_id,
        recipient_key,
        trigger,
        payload,
        address,
    )


# One message per endpoint of the program that subscribes to the event type (disabled ones
# too: they are held, not dropped). Webhook rows start pending: no skip to count.
_FAN_OUT = (
    "INSERT INTO deliveries (id, event_id, program_id, participant_id, recipient_key, "
    "channel, trigger, category, payload, endpoint_id, status) "
    "SELECT gen_random_uuid(), {event}, {program}, {participant}, e.id::text, 'webhook', "
    "{type}, 'transactional', {payload}, e.id, 'pending' FROM webhook_endpoints e "
    "WHERE e.program_id = {program} AND (cardinality(e.event_types) = 0 "
    "OR {type} = ANY(e.event_types)){also} "
    "ON CONFLICT (event_id, recipient_key, channel) DO NOTHING"
)
_FAN_OUT_ALONE = _FAN_OUT.format(
    event="$1", program="$2", participant="$3", type="$4", payload="$5", also=""
)


async def fan_out(conn: asyncpg.Connection, event_id: UUID, webhooks: Fanout) -> None:
    """One row per subscribed endpoint of the program."""
    await conn.execute(
        _FAN_OUT_ALONE,
        event_id,
        webhooks.program_id,
        webhooks.participant_id,
        webhooks.event_type,
        webhooks.payload,
    )


_RECORD = (
    # The participant's rows of one message, set-wise, the feed item when the in-app row is
    # new and sent, and the event's webhook rows if any: one round trip for all of them.
    "WITH d AS (INSERT INTO deliveries (id, event_id, program_id, participant_id, "
    "recipient_key, channel, trigger, category, payload, address, status, reason, sent_at) "
    "SELECT r.id, $1, $2, $3, $4, r.channel, $5, $6, r.payload, r.address, r.status, r.reason, "
    "CASE WHEN r.status = 'sent' THEN now() END "
    "FROM unnest($7::uuid[], $8::text[], $9::jsonb[], $10::text[], $11::text[], $12::text[]) "
    "AS r(id, channel, payload, address, status, reason) "
    "ON CONFLICT (event_id, recipient_key, channel) DO NOTHING RETURNING channel, status), "
    "n AS (INSERT INTO notifications (id, event_id, program_id, participant_id, kind, title, "
    "body) SELECT $13, $1, $2, $3, $5, $14, $15 "
    "WHERE EXISTS (SELECT 1 FROM d WHERE d.channel = 'in_app' AND d.status = 'sent') "
    "ON CONFLICT DO NOTHING), "
    "w AS ("
    + _FAN_OUT.format(
        event="$1",
        program="$16",
        participant="$17",
        type="$18",
        payload="$19",
        also=" AND $18::text IS NOT NULL",
    )
    + ") "
    "SELECT channel, status FROM d"
)


async def record_for_participant(
    conn: asyncpg.Connection,
    *,
    event_id: UUID,
    program_id: UUID,
    participant_id: UUID,
    trigger: str,
    category: str,
    rows: list[ChannelRow],
    feed_title: str,
    feed_text: str,
    webhooks: Fanout | None,
) -> list[tuple[str, str]]:
    """The participant's rows, the feed item (with a new, sent in-app row) and the event's
    webhook rows, in one statement. Returns (channel, status) of the rows that were new."""
    recorded = await conn.fetch(
        _RECORD,
        event_id,
        program_id,
        participant_id,
        str(participant_id),
        trigger,
        category,
        [uuid.uuid4() for _ in rows],
        [r.channel for r in rows],
        [r.payload for r in rows],
        [r.address for r in rows],
        [r.status for r in rows],
        [r.reason for r in rows],
        uuid.uuid4(),
        feed_title,
        feed_text,
        webhooks.program_id if webhooks else None,
        webhooks.participant_id if webhooks else None,
        webhooks.event_type if webhooks else None,
        webhooks.payload if webhooks else None,
    )
    return [(r["channel"], r["status"]) for r in recorded]


async def erase_content(conn: asyncpg.Connection, participant_id: UUID) -> None:
    """The log keeps its rows (what was sent when) without the address or the content; what
    was still pending is skipped."""
    await conn.execute(
        "UPDATE deliveries SET address = NULL, payload = '{}'::jsonb, "
        "status = CASE WHEN status = 'pending' THEN 'skipped' ELSE status END, "
        "reason = CASE WHEN status = 'pending' THEN 'participant erased' ELSE reason END "
        "WHERE participant_id = $1",
        participant_id,
    )


# ---- delivering (claims, outcomes) ----

_CLAIM = """
WITH due AS (
    SELECT d.id FROM deliveries d
    LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= now()
      AND d.channel = $3
      AND (d.channel = 'email' OR (e.id IS NOT NULL AND e.disabled_at IS NULL))
    ORDER BY d.next_attempt_at
    LIMIT $1
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries SET attempts = attempts + 1,
       next_attempt_at = now() + make_interval(secs => $2)
FROM due WHERE deliveries.id = due.id
RETURNING deliveries.id, deliveries.channel, deliveries.address, deliveries.payload,
          deliveries.endpoint_id, deliveries.attempts
"""


async def claim(conn: Conn, channel: str, limit: int, lease_s: float) -> list[dict[str, Any]]:
    """Due rows of ``channel`` (not those of disabled endpoints), leased for ``lease_s``: the
    same statement pushes their next attempt forward and counts the attempt."""
    rows = await conn.fetch(_CLAIM, limit, lease_s, channel)
    return [dict(r) for r in rows]


@dataclass(frozen=True)
class AttemptRow:
    delivery_id: UUID
    attempt: int
    ok: bool
    error: str | None
    started_at: datetime
    duration_ms: float


async def add_attempts(conn: asyncpg.Connection, attempts: list[AttemptRow]) -> None:
    await conn.executemany(
        "INSERT INTO delivery_attempts (delivery_id, attempt, status, error, "
        "started_at, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (
                a.delivery_id,
                a.attempt,
                "sent" if a.ok else "failed",
                a.error,
                a.started_at,
                a.duration_ms,
            )
            for a in attempts
        ],
    )


# An outcome is recorded only while the claim is still ours (same attempt count, pending).
_STILL_OURS = "WHERE id = $1 AND status = 'pending' AND attempts = $2"


async def mark_sent(conn: asyncpg.Connection, claims: list[tuple[UUID, int]]) -> None:
    """(delivery, attempt count at the claim) pairs."""
    await conn.execute(
        "UPDATE deliveries d SET status = 'sent', sent_at = now(), reason = NULL "
        "FROM unnest($1::uuid[], $2::int[]) AS u(id, attempts) "
        "WHERE d.id = u.id AND d.attempts = u.attempts AND d.status = 'pending'",
        [c[0] for c in claims],
        [c[1] for c in claims],
    )


async def retry_later(
    conn: asyncpg.Connection, delivery_id: UUID, attempts: int, error: str | None, delay_s: float
) -> None:
    await conn.execute(
        "UPDATE deliveries SET reason = $3, "
        f"next_attempt_at = now() + make_interval(secs => $4) {_STILL_OURS}",
        delivery_id,
        attempts,
        error,
        delay_s,
    )


async def mark_failed(
    conn: asyncpg.Connection, delivery_id: UUID, attempts: int, error: str | None
) -> None:
    await conn.execute(
        f"UPDATE deliveries SET status = 'failed', reason = $3 {_STILL_OURS}",
        delivery_id,
        attempts,
        error,
    )


async def restart_for_endpoint(conn: asyncpg.Connection, endpoint_id: UUID) -> None:
    """The endpoint's held messages, due now with a fresh retry schedule."""
    await conn.execute(
        "UPDATE deliveries SET attempts = 0, next_attempt_at = now() "
        "WHERE endpoint_id = $1 AND status = 'pending'",
        endpoint_id,
    )


async def skip_for_endpoint(conn: asyncpg.Connection, endpoint_id: UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE deliveries SET status = 'skipped', reason = $2 "
        "WHERE endpoint_id = $1 AND status = 'pending'",
        endpoint_id,
        reason,
    )


async def pending_by_channel(conn: Conn) -> dict[str, tuple[int, float]]:
    """Per channel: messages waiting and the age of the oldest, in seconds."""
    rows = await conn.fetch(
        "SELECT channel, count(*) AS n, "
        "coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age "
        "FROM deliveries WHERE status = 'pending' GROUP BY channel"
    )
    return {r["channel"]: (int(r["n"]), float(r["age"])) for r in rows}


# ---- the log (API) ----

_COLUMNS = (
    "id, event_id, participant_id, channel, trigger, category, endpoint_id, status, reason, "
    "attempts, next_attempt_at, created_at, sent_at"
)


async def page(
    conn: Conn,
    program_id: UUID,
    *,
    participant_id: UUID | None,
    channel: str | None,
    status: str | None,
    triggers: list[str] | None,
    endpoint_id: UUID | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first, those before ``before`` (created_at, id) when given."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM deliveries WHERE program_id = $1 "
        "AND ($2::uuid IS NULL OR participant_id = $2) AND ($3::text IS NULL OR channel = $3) "
        "AND ($4::text IS NULL OR status = $4) AND ($5::text[] IS NULL OR trigger = ANY($5)) "
        "AND ($6::uuid IS NULL OR endpoint_id = $6) "
        "AND ($7::timestamptz IS NULL OR (created_at, id) < ($7, $8::uuid)) "
        "ORDER BY created_at DESC, id DESC LIMIT $9",
        program_id,
        participant_id,
        channel,
        status,
        triggers,
        endpoint_id,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )
    return [dict(r) for r in rows]


async def get(conn: Conn, program_id: UUID, delivery_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM deliveries WHERE id = $1 AND program_id = $2",
        delivery_id,
        program_id,
    )
    return dict(row) if row else None


async def attempts_of(conn: Conn, delivery_ids: list[UUID]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT delivery_id, attempt, status, error, started_at, duration_ms "
        "FROM delivery_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY id",
        delivery_ids,
    )
    return [dict(r) for r in rows]


async def redeliver(conn: Conn, delivery_id: UUID) -> None:
    await conn.execute(
        "UPDATE deliveries SET status = 'pending', reason = 'redelivery requested', "
        "attempts = 0, next_attempt_at = now() WHERE id = $1",
        delivery_id,
    )
