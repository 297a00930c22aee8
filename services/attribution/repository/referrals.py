"""Queries of the referrals attribution decides: signups, their fraud decisions, conversions
and refunds."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from shared.messaging.outbox import OutboxRow, outbox_insert_from


async def referrer_fingerprints(
    conn: asyncpg.Connection, program_id: UUID, external_user_id: str
) -> tuple[frozenset[str], frozenset[str]]:
    """IP and device hashes of the referrer's own signup(s) as a customer of this program."""
    rows = await conn.fetch(
        "SELECT ip_hash, device_hash FROM signups WHERE program_id = $1 AND customer_id = $2",
        program_id,
        external_user_id,
    )
    return (
        frozenset(r["ip_hash"] for r in rows if r["ip_hash"]),
        frozenset(r["device_hash"] for r in rows if r["device_hash"]),
    )


async def velocity_counts(
    conn: asyncpg.Connection,
    program_id: UUID,
    referrer_id: UUID,
    ip_hash: str | None,
    at: datetime,
    own_id: UUID,
) -> tuple[int, int, int]:
    """Other signups for this referrer in the hour and the day before ``at`` (the signup's
    own time, so a signup decided late is counted as of then), and from this IP in a day."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE signed_up_at > $3::timestamptz - interval '1 hour') "
        "AS hour, "
        "count(*) AS day FROM signups WHERE candidate_referrer_id = $2 AND program_id = $1 "
        "AND signed_up_at > $3::timestamptz - interval '1 day' AND signed_up_at <= $3 "
        "AND id <> $4",
        program_id,
        referrer_id,
        at,
        own_id,
    )
    ip_day = 0
    if ip_hash is not None:
        ip_day = await conn.fetchval(
            "SELECT count(*) FROM signups WHERE program_id = $1 AND ip_hash = $2 "
            "AND signed_up_at > $3 AND signed_up_at <= $4 AND id <> $5",
            program_id,
            ip_hash,
            at - timedelta(days=1),
            at,
            own_id,
        )
    return row["hour"], row["day"], ip_day


_SIGNUP_COLUMNS = (
    "id",
    "program_id",
    "customer_id",
    "referrer_id",
    "candidate_referrer_id",
    "click_id",
    "attributed",
    "reason",
    "status",
    "signed_up_at",
    "email_hash",
    "email_domain_hash",
    "ip_hash",
    "device_hash",
    "user_agent_hash",
    "existing_customer",
    "program_version",
    "received_at",
    "decided_at",
    "referral_code",
    "email_disposable",
    "pending_until",
    "billing_customer_id",
)


async def insert_signup(conn: asyncpg.Connection, values: dict[str, Any]) -> bool:
    columns = ", ".join(_SIGNUP_COLUMNS)
    params = ", ".join(f"${i}" for i in range(1, len(_SIGNUP_COLUMNS) + 1))
    inserted = await conn.fetchval(
        f"INSERT INTO signups ({columns}) VALUES ({params}) "
        "ON CONFLICT (program_id, customer_id) DO NOTHING RETURNING true",
        *(values[c] for c in _SIGNUP_COLUMNS),
    )
    return bool(inserted)


async def insert_decision(
    conn: asyncpg.Connection,
    signup_id: UUID,
    program_id: UUID,
    outcome: str,
    rules: list[dict[str, Any]],
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO fraud_decisions (signup_id, program_id, outcome, rules, decided_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        signup_id,
        program_id,
        outcome,
        rules,
        at,
    )


async def decision(
    conn: asyncpg.Connection | asyncpg.Pool, signup_id: UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM fraud_decisions WHERE signup_id = $1", signup_id)


async def signup_of_customer(
    conn: asyncpg.Connection, program_id: UUID, customer_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM signups WHERE program_id = $1 AND customer_id = $2", program_id, customer_id
    )


async def signup_in_program(
    conn: asyncpg.Connection | asyncpg.Pool,
    program_id: UUID,
    signup_id: UUID,
    *,
    lock: bool = False,
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM signups WHERE program_id = $1 AND id = $2" + (" FOR UPDATE" if lock else ""),
        program_id,
        signup_id,
    )


async def signup(conn: asyncpg.Connection, signup_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM signups WHERE id = $1", signup_id)


async def set_status(
    conn: asyncpg.Connection,
    signup_id: UUID,
    status: str,
    referrer_id: UUID | None,
    note: str | None,
) -> None:
    await conn.execute(
        "UPDATE signups SET status = $2, referrer_id = $3::uuid, "
        "attributed = ($3::uuid IS NOT NULL), "
        "reviewed_at = now(), review_note = $4 WHERE id = $1",
        signup_id,
        status,
        referrer_id,
        note,
    )


async def conversion_of_order(
    conn: asyncpg.Connection, program_id: UUID, order_id: str, *, lock: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM conversions WHERE program_id = $1 AND order_id = $2"
        + (" FOR UPDATE" if lock else ""),
        program_id,
        order_id,
    )


async def conversions_of(
    conn: asyncpg.Connection | asyncpg.Pool, signup_id: UUID
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM conversions WHERE signup_id = $1 ORDER BY converted_at, id", signup_id
    )


async def release_held_conversion(
    conn: asyncpg.Connection, conversion_id: UUID, reason: str
) -> None:
    """A conversion held for review is published now, with its final ``reason``."""
    await conn.execute(
        "UPDATE conversions SET published = true, reason = $2 WHERE id = $1", conversion_id, reason
    )


async def signup_for_conversion(
    conn: asyncpg.Connection, program_id: UUID, customer_id: str
) -> asyncpg.Record | None:
    """The customer's signup, row-locked (one referee's purchases are numbered one at a
    time), with its referrer's experiment variant and user id."""
    return await conn.fetchrow(
        "SELECT s.*, p.variant AS referrer_variant, "
        "p.external_user_id AS referrer_external_user_id FROM signups s "
        "LEFT JOIN participants p ON p.participant_id = s.referrer_id "
        "WHERE s.program_id = $1 AND s.customer_id = $2 FOR UPDATE OF s",
        program_id,
        customer_id,
    )


async def conversion_context(
    conn: asyncpg.Connection, program_id: UUID, order_id: str, signup_id: UUID, at: datetime
) -> asyncpg.Record:
    """What a new purchase is judged on, in one round trip: an earlier conversion of the same
    order, the referral's earlier qualifying purchases, the version in force at ``at`` (when
    the purchase happened) and when the program's first known version took effect. Run
    after the signup lock: a statement's snapshot is taken when it starts."""
    return await conn.fetchrow(
        "SELECT (SELECT id FROM conversions WHERE program_id = $1 AND order_id = $2) AS existing, "
        "(SELECT coalesce(array_agg(converted_at ORDER BY sequence), '{}') FROM conversions "
        " WHERE signup_id = $3 AND sequence IS NOT NULL) AS earlier, "
        "(SELECT version FROM program_versions WHERE program_id = $1 AND effective_from <= $4 "
        " ORDER BY version DESC LIMIT 1) AS version, "
        "(SELECT min(effective_from) FROM program_versions WHERE program_id = $1) "
        " AS program_start",
        program_id,
        order_id,
        signup_id,
        at,
    )


_CONVERSION_COLUMNS = (
    "id",
    "signup_id",
    "program_id",
    "order_id",
    "amount",
    "currency",
    "converted_at",
    "qualified",
    "reason",
    "sequence",
    "published",
    "program_version",
    "received_at",
)


async def insert_conversion(conn: asyncpg.Connection, values: dict[str, Any]) -> bool:
    columns = ", ".join(_CONVERSION_COLUMNS)
    params = ", ".join(f"${i}" for i in range(1, len(_CONVERSION_COLUMNS) + 1))
    inserted = await conn.fetchval(
        f"INSERT INTO conversions ({columns}) VALUES ({params}) "
        "ON CONFLICT (program_id, order_id) DO NOTHING RETURNING true",
        *(values[c] for c in _CONVERSION_COLUMNS),
    )
    return bool(inserted)


async def insert_conversion_with_event(
    conn: asyncpg.Connection, values: dict[str, Any], event: OutboxRow | None
) -> bool:
    """The conversion and, when it is published, its outbox row: one statement."""
    columns = ", ".join(_CONVERSION_COLUMNS)
    n = len(_CONVERSION_COLUMNS)
    params = ", ".join(f"${i}" for i in range(1, n + 1))
    if event is None:
        return await insert_conversion(conn, values)
    inserted = await conn.fetchval(
        f"WITH c AS (INSERT INTO conversions ({columns}) VALUES ({params}) "
        "ON CONFLICT (program_id, order_id) DO NOTHING RETURNING id), "
        f"o AS ({outbox_insert_from(n + 1, 'c')}) "
        "SELECT count(*) = 1 FROM c",
        *(values[c] for c in _CONVERSION_COLUMNS),
        *event,
    )
    return bool(inserted)


async def refund_in_program(
    conn: asyncpg.Connection, program_id: UUID, refund_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM refunds WHERE program_id = $1 AND refund_id = $2", program_id, refund_id
    )


async def refunds_of(conn: asyncpg.Connection, conversion_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM refunds WHERE conversion_id = $1 ORDER BY refunded_at, id", conversion_id
    )


async def insert_refund(conn: asyncpg.Connection, values: dict[str, Any]) -> bool:
    """False when the refund id was tracked already."""
    inserted = await conn.fetchval(
        "INSERT INTO refunds (id, program_id, refund_id, conversion_id, amount, full_refund, "
        "published, refunded_at, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (program_id, refund_id) DO NOTHING RETURNING true",
        *(values[c] for c in _REFUND_COLUMNS),
    )
    return bool(inserted)


_REFUND_COLUMNS = (
    "id",
    "program_id",
    "refund_id",
    "conversion_id",
    "amount",
    "full_refund",
    "published",
    "refunded_at",
    "received_at",
)


async def set_refunded_amount(conn: asyncpg.Connection, conversion_id: UUID, total: int) -> None:
    await conn.execute(
        "UPDATE conversions SET refunded_amount = $2 WHERE id = $1", conversion_id, total
    )


async def mark_refund_published(conn: asyncpg.Connection, refund_id: UUID) -> None:
    await conn.execute("UPDATE refunds SET published = true WHERE id = $1", refund_id)


async def forget_customer(
    conn: asyncpg.Connection, program_id: UUID, customer_id: str, replacement: str
) -> None:
    """Erasure of a customer's own signup(s) in the program: the customer id becomes
    ``replacement``, every fingerprint hash goes, and so do the inputs of its fraud rules."""
    own = await conn.fetch(
        "UPDATE signups SET customer_id = $3, email_hash = NULL, email_domain_hash = NULL, "
        "ip_hash = NULL, device_hash = NULL, user_agent_hash = NULL, "
        "billing_customer_id = NULL "
        "WHERE program_id = $1 AND customer_id = $2 RETURNING id",
        program_id,
        customer_id,
        replacement,
    )
    await conn.execute(
        "UPDATE fraud_decisions SET rules = (SELECT coalesce(jsonb_agg(x - 'inputs'), "
        "'[]'::jsonb) FROM jsonb_array_elements(rules) x) WHERE signup_id = ANY($1::uuid[])",
        [r["id"] for r in own],
    )
