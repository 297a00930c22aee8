"""Queries of Stripe events in: endpoints and their signing secrets, the events received, the
Stripe payments behind conversions, and signups looked up by their Stripe customer id."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool

# Endpoints and secrets.


async def insert_endpoint(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO stripe_endpoints (id, program_id, client_reference_id, metadata_key, "
        "created_at) VALUES ($1, $2, $3, $4, $5)",
        values["id"],
        values["program_id"],
        values["client_reference_id"],
        values["metadata_key"],
        values["created_at"],
    )


_ENDPOINT = (
    "SELECT e.*, coalesce(array_agg(s.secret ORDER BY s.added_at) "
    "FILTER (WHERE s.secret IS NOT NULL), '{}') AS secrets, "
    "coalesce(jsonb_agg(jsonb_build_object('fingerprint', s.fingerprint, 'added_at', "
    "s.added_at) ORDER BY s.added_at) FILTER (WHERE s.secret IS NOT NULL), '[]') AS shown "
    "FROM stripe_endpoints e LEFT JOIN stripe_endpoint_secrets s ON s.endpoint_id = e.id "
)


async def endpoint(conn: Conn, endpoint_id: UUID) -> asyncpg.Record | None:
    """An endpoint with its secrets (``secrets``, for verifying) and their fingerprints
    (``shown``, for answers)."""
    return await conn.fetchrow(f"{_ENDPOINT} WHERE e.id = $1 GROUP BY e.id", endpoint_id)


async def endpoints_of(conn: Conn, program_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"{_ENDPOINT} WHERE e.program_id = $1 GROUP BY e.id ORDER BY e.created_at, e.id",
        program_id,
    )


async def lock_endpoint(conn: asyncpg.Connection, endpoint_id: UUID, program_id: UUID) -> bool:
    """Lock the program's endpoint (secret changes are serialised); False if there is none."""
    return bool(
        await conn.fetchval(
            "SELECT true FROM stripe_endpoints WHERE id = $1 AND program_id = $2 FOR UPDATE",
            endpoint_id,
            program_id,
        )
    )


async def secret_count(conn: asyncpg.Connection, endpoint_id: UUID) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM stripe_endpoint_secrets WHERE endpoint_id = $1", endpoint_id
        )
    )


async def add_secret(
    conn: asyncpg.Connection, endpoint_id: UUID, fingerprint: str, secret: str, at: datetime
) -> bool:
    """False when the endpoint holds this secret already."""
    added = await conn.fetchval(
        "INSERT INTO stripe_endpoint_secrets (endpoint_id, fingerprint, secret, added_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
        endpoint_id,
        fingerprint,
        secret,
        at,
    )
    return bool(added)


async def retire_secret(conn: asyncpg.Connection, endpoint_id: UUID, fingerprint: str) -> bool:
    retired = await conn.fetchval(
        "DELETE FROM stripe_endpoint_secrets WHERE endpoint_id = $1 AND fingerprint = $2 "
        "RETURNING true",
        endpoint_id,
        fingerprint,
    )
    return bool(retired)


# Events received.


async def claim_event(
    conn: asyncpg.Connection, endpoint_id: UUID, event_id: str, kind: str, at: datetime
) -> bool:
    """Record an event not seen before (its outcome is written in the same transaction);
    False for one received already. A concurrent delivery of the same event waits here
    until the first one commits."""
    claimed = await conn.fetchval(
        "INSERT INTO stripe_events (endpoint_id, event_id, type, status, reason, received_at) "
        "VALUES ($1, $2, $3, 'failed', 'processing', $4) ON CONFLICT DO NOTHING RETURNING true",
        endpoint_id,
        event_id,
        kind,
        at,
    )
    return bool(claimed)


async def event_for_update(
    conn: asyncpg.Connection, endpoint_id: UUID, event_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM stripe_events WHERE endpoint_id = $1 AND event_id = $2 FOR UPDATE",
        endpoint_id,
        event_id,
    )


async def record_outcome(
    conn: asyncpg.Connection,
    endpoint_id: UUID,
    event_id: str,
    *,
    status: str,
    reason: str,
    order_id: str | None,
    payload: dict[str, Any] | None,
    at: datetime,
    again: bool,
) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE stripe_events SET status = $3, reason = $4, order_id = $5, payload = $6, "
        "applied_at = CASE WHEN $3 = 'applied' THEN $7::timestamptz END, "
        "attempts = attempts + CASE WHEN $8 THEN 1 ELSE 0 END "
        "WHERE endpoint_id = $1 AND event_id = $2 RETURNING *",
        endpoint_id,
        event_id,
        status,
        reason,
        order_id,
        payload,
        at,
        again,
    )


async def events_of(
    conn: Conn, endpoint_id: UUID, statuses: list[str] | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM stripe_events WHERE endpoint_id = $1 "
        "AND ($2::text[] IS NULL OR status = ANY($2::text[])) "
        "ORDER BY received_at, event_id LIMIT $3",
        endpoint_id,
        statuses,
        limit,
    )


# Payments behind conversions, and customers.


async def remember_payment(
    conn: asyncpg.Connection, program_id: UUID, stripe_ids: tuple[str, ...], order_id: str
) -> None:
    await conn.execute(
        "INSERT INTO stripe_payments (program_id, stripe_id, order_id) "
        "SELECT $1, unnest($2::text[]), $3 ON CONFLICT DO NOTHING",
        program_id,
        list(stripe_ids),
        order_id,
    )


async def order_of_payment(
    conn: asyncpg.Connection, program_id: UUID, stripe_ids: tuple[str, ...]
) -> str | None:
    """The order id of the conversion made from any of these Stripe ids."""
    return await conn.fetchval(
        "SELECT order_id FROM stripe_payments WHERE program_id = $1 "
        "AND stripe_id = ANY($2::text[]) LIMIT 1",
        program_id,
        list(stripe_ids),
    )


async def refunded_from_charge(conn: asyncpg.Connection, program_id: UUID, prefix: str) -> int:
    """Minor units refunded so far through refunds whose id starts with ``prefix`` (those
    recorded from one charge's events)."""
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM refunds WHERE program_id = $1 "
            "AND starts_with(refund_id, $2)",
            program_id,
            prefix,
        )
    )


async def customer_of_billing_id(
    conn: asyncpg.Connection, program_id: UUID, billing_customer_id: str
) -> str | None:
    """The customer id of the signup that recorded this Stripe customer (the first one)."""
    return await conn.fetchval(
        "SELECT customer_id FROM signups WHERE program_id = $1 AND billing_customer_id = $2 "
        "ORDER BY signed_up_at, id LIMIT 1",
        program_id,
        billing_customer_id,
    )
