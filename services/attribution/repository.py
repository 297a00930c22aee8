"""Queries of the attribution service."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.attribution.policy import Click
from shared.contracts.sections.attribution import AttributionPolicy
from shared.contracts.sections.fraud import FraudPolicy
from shared.messaging.outbox import OutboxRow, outbox_insert_from

_CLICK_COLUMNS = (
    "click_id, program_id, participant_id, clicked_at, attributable, visitor_hash, traceparent"
)


async def get_click(conn: asyncpg.Connection | asyncpg.Pool, click_id: UUID) -> Click | None:
    row = await conn.fetchrow(f"SELECT {_CLICK_COLUMNS} FROM clicks WHERE click_id = $1", click_id)
    return Click(**dict(row)) if row else None


async def visitor_clicks(
    conn: asyncpg.Connection, program_id: UUID, visitor_hash: str, since: datetime
) -> list[Click]:
    rows = await conn.fetch(
        f"SELECT {_CLICK_COLUMNS} FROM clicks WHERE program_id = $1 AND visitor_hash = $2 "
        "AND clicked_at >= $3 ORDER BY clicked_at LIMIT 500",
        program_id,
        visitor_hash,
        since,
    )
    return [Click(**dict(r)) for r in rows]


async def participant_by_code(conn: asyncpg.Connection, program_id: UUID, code: str) -> UUID | None:
    """The code as typed, else in upper case (people type codes in lower case)."""
    return await conn.fetchval(
        "SELECT participant_id FROM participants WHERE code = ANY($1::text[]) "
        "AND program_id = $2 ORDER BY code = $3 DESC LIMIT 1",
        list({code.strip(), code.strip().upper()}),
        program_id,
        code.strip(),
    )


async def participant(conn: asyncpg.Connection, participant_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM participants WHERE participant_id = $1", participant_id
    )


async def versions(conn: asyncpg.Connection, program_id: UUID) -> list[tuple[int, datetime]]:
    rows = await conn.fetch(
        "SELECT version, effective_from FROM program_versions WHERE program_id = $1", program_id
    )
    return [(r["version"], r["effective_from"]) for r in rows]


# Versions are immutable once published, so their parsed sections are kept in the process.
_POLICIES: dict[tuple[UUID, int], tuple[AttributionPolicy, FraudPolicy]] = {}
_POLICY_CACHE_SIZE = 4096


async def policies_of(
    conn: asyncpg.Connection, program_id: UUID, version: int
) -> tuple[AttributionPolicy, FraudPolicy]:
    """The attribution and fraud sections of one version (defaults for versions written
    before a field existed)."""
    key = (program_id, version)
    cached = _POLICIES.get(key)
    if cached is not None:
        return cached
    definition = await conn.fetchval(
        "SELECT definition FROM program_versions WHERE program_id = $1 AND version = $2",
        program_id,
        version,
    )
    definition = definition or {}
    parsed = (
        AttributionPolicy.model_validate(definition.get("attribution") or {}),
        FraudPolicy.model_validate(definition.get("fraud") or {}),
    )
    if len(_POLICIES) >= _POLICY_CACHE_SIZE:
        _POLICIES.clear()
    _POLICIES[key] = parsed
    return parsed


async def policies_in_force(
    conn: asyncpg.Connection, program_id: UUID, at: datetime
) -> tuple[int | None, AttributionPolicy, FraudPolicy]:
    """The version in force at ``at`` and its attribution and fraud sections (defaults when
    attribution has not seen the program yet)."""
    version = await conn.fetchval(
        "SELECT version FROM program_versions WHERE program_id = $1 "
        "AND effective_from <= $2 ORDER BY version DESC LIMIT 1",
        program_id,
        at,
    )
    if version is None:
        return None, AttributionPolicy(), FraudPolicy()
    return (version, *await policies_of(conn, program_id, version))


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
    now: datetime,
) -> tuple[int, int, int]:
    """Earlier signups for this referrer in the last hour and day, and from this IP in a day."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE signed_up_at > $3::timestamptz - interval '1 hour') "
        "AS hour, "
        "count(*) AS day FROM signups WHERE candidate_referrer_id = $2 AND program_id = $1 "
        "AND signed_up_at > $3::timestamptz - interval '1 day'",
        program_id,
        referrer_id,
        now,
    )
    ip_day = 0
    if ip_hash is not None:
        ip_day = await conn.fetchval(
            "SELECT count(*) FROM signups WHERE program_id = $1 AND ip_hash = $2 "
            "AND signed_up_at > $3",
            program_id,
            ip_hash,
            now - timedelta(days=1),
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


async def get_signup(
    conn: asyncpg.Connection, program_id: UUID, customer_id: str, *, lock: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM signups WHERE program_id = $1 AND customer_id = $2"
        + (" FOR UPDATE" if lock else ""),
        program_id,
        customer_id,
    )


async def signup_by_id(
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


async def get_conversion(
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


async def earlier_qualifying(conn: asyncpg.Connection, signup_id: UUID) -> list[datetime]:
    rows = await conn.fetch(
        "SELECT converted_at FROM conversions WHERE signup_id = $1 AND sequence IS NOT NULL "
        "ORDER BY sequence",
        signup_id,
    )
    return [r["converted_at"] for r in rows]


async def signup_for_conversion(
    conn: asyncpg.Connection, program_id: UUID, customer_id: str
) -> asyncpg.Record | None:
    """The customer's signup, row-locked (one referee's purchases are numbered one at a
    time), with its referrer's experiment variant."""
    return await conn.fetchrow(
        "SELECT s.*, p.variant AS referrer_variant FROM signups s "
        "LEFT JOIN participants p ON p.participant_id = s.referrer_id "
        "WHERE s.program_id = $1 AND s.customer_id = $2 FOR UPDATE OF s",
        program_id,
        customer_id,
    )


async def conversion_context(
    conn: asyncpg.Connection, program_id: UUID, order_id: str, signup_id: UUID, at: datetime
) -> asyncpg.Record:
    """What a new purchase is judged on, in one round trip: an earlier conversion of the same
    order, the referral's earlier qualifying purchases, the version in force at ``at``. Run
    after the signup lock: a statement's snapshot is taken when it starts."""
    return await conn.fetchrow(
        "SELECT (SELECT id FROM conversions WHERE program_id = $1 AND order_id = $2) AS existing, "
        "(SELECT coalesce(array_agg(converted_at ORDER BY sequence), '{}') FROM conversions "
        " WHERE signup_id = $3 AND sequence IS NOT NULL) AS earlier, "
        "(SELECT version FROM program_versions WHERE program_id = $1 AND effective_from <= $4 "
        " ORDER BY version DESC LIMIT 1) AS version",
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


async def get_refund(
    conn: asyncpg.Connection, program_id: UUID, refund_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM refunds WHERE program_id = $1 AND refund_id = $2", program_id, refund_id
    )


async def refunds_of(conn: asyncpg.Connection, conversion_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM refunds WHERE conversion_id = $1 ORDER BY refunded_at, id", conversion_id
    )
