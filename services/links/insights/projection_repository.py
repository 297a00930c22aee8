"""Writes of the read models (``rm_*`` tables) by the projector: every statement upserts the
facts one event carries and merges them with what is there by order-free rules, so events of
one referral may arrive in any order and a replay rebuilds the same rows."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

# How each column merges an existing value with a newly seen one.
_MERGE = {
    "first": "coalesce({t}.{c}, EXCLUDED.{c})",
    "earliest": "least({t}.{c}, EXCLUDED.{c})",
    "greatest": "greatest({t}.{c}, EXCLUDED.{c})",
    "union": "ARRAY(SELECT DISTINCT x FROM unnest({t}.{c} || EXCLUDED.{c}) AS x ORDER BY x)",
    "sum": "{t}.{c} + EXCLUDED.{c}",
}


def upsert_sql(table: str, key: tuple[str, ...], columns: dict[str, str]) -> str:
    """INSERT of ``key`` + ``columns`` (in that order, as $1..$n) that merges on conflict."""
    names = [*key, *columns]
    params = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    merges = ", ".join(
        f"{col} = " + _MERGE[how].format(t=table, c=col) for col, how in columns.items()
    )
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({params}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {merges}"
    )


_PARTICIPANT = upsert_sql(
    "rm_participants",
    ("participant_id",),
    {"program_id": "first", "variant": "first", "enrolled_at": "earliest", "erased_at": "earliest"},
)
_SHARE = (
    "INSERT INTO rm_shares (share_id, program_id, participant_id, channel, shared_at) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
)
_REFERRAL = upsert_sql(
    "rm_referrals",
    ("referral_id",),
    {
        "program_id": "first",
        "referrer_id": "first",
        "referee_customer_id": "first",
        "variant": "first",
        "signed_up_at": "earliest",
        "flagged_at": "earliest",
        "flag_rules": "union",
        "rejected_at": "earliest",
        "reject_rules": "union",
    },
)
_PENDING = upsert_sql(
    "rm_pending_referrals",
    ("referral_id",),
    {
        "program_id": "first",
        "waiting_for": "first",
        "referral_code": "first",
        "signed_up_at": "earliest",
        "received_at": "earliest",
        "resolved_at": "earliest",
        "resolution": "first",
        "referrer_id": "first",
    },
)
_CONVERSION = upsert_sql(
    "rm_conversions",
    ("conversion_id",),
    {
        "referral_id": "first",
        "program_id": "first",
        "referrer_id": "first",
        "order_amount": "first",
        "currency": "first",
        "converted_at": "earliest",
        "program_version": "first",
        "variant": "first",
        "sequence": "greatest",
        "refunded": "sum",
        "reversed_at": "earliest",
    },
)
_REWARD = upsert_sql(
    "rm_rewards",
    ("reward_id",),
    {
        "program_id": "first",
        "referrer_id": "first",
        "conversion_id": "first",
        "referral_id": "first",
        "program_version": "first",
        "side": "first",
        "recipient": "first",
        "unit": "first",
        "amount": "first",
        "initial_status": "first",
        "created_at": "earliest",
        "available_at": "earliest",
        "issued_amount": "first",
        "issued_at": "earliest",
        "reversed_amount": "greatest",
        "reversal_kind": "greatest",
        "reversed_at": "earliest",
        "failure_reason": "greatest",
        "failed_at": "earliest",
        "variant": "first",
        "rule": "first",
        "perk": "first",
    },
)
_MILESTONE = upsert_sql(
    "rm_milestones",
    ("program_id", "referrer_id", "threshold"),
    {"reached_at": "earliest", "reward_id": "first", "perk": "first", "amount": "first",
     "unit": "first"},
)  # fmt: skip
_CLICKS = (
    "INSERT INTO rm_clicks_daily (participant_id, day, program_id, clicks, attributable, "
    "invites) SELECT * FROM unnest($1::uuid[], $2::date[], $3::uuid[], $4::bigint[], "
    "$5::bigint[], $6::bigint[]) "
    "ON CONFLICT (participant_id, day) DO UPDATE SET "
    "clicks = rm_clicks_daily.clicks + EXCLUDED.clicks, "
    "attributable = rm_clicks_daily.attributable + EXCLUDED.attributable, "
    "invites = rm_clicks_daily.invites + EXCLUDED.invites"
)
_RULES = (
    "INSERT INTO rm_referral_rules (referral_id, decision, rule, action, shadow, reason) "
    "SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::boolean[], $6::text[]) "
    "ON CONFLICT DO NOTHING"
)
_ERASED = "SELECT erased_at IS NOT NULL FROM rm_participants WHERE participant_id = $1"

_REFERRAL_COLUMNS = (
    "program_id", "referrer_id", "referee_customer_id", "variant", "signed_up_at",
    "flagged_at", "flag_rules", "rejected_at", "reject_rules",
)  # fmt: skip
_CONVERSION_COLUMNS = (
    "referral_id", "program_id", "referrer_id", "order_amount", "currency", "converted_at",
    "program_version", "variant", "sequence", "refunded", "reversed_at",
)  # fmt: skip
_REWARD_COLUMNS = (
    "program_id", "referrer_id", "conversion_id", "referral_id", "program_version", "side",
    "recipient", "unit", "amount", "initial_status", "created_at", "available_at",
    "issued_amount", "issued_at", "reversed_amount", "reversal_kind", "reversed_at",
    "failure_reason", "failed_at", "variant", "rule", "perk",
)  # fmt: skip


async def referrer_erased(conn: asyncpg.Connection, referrer_id: UUID) -> bool:
    return bool(await conn.fetchval(_ERASED, referrer_id))


async def upsert_participant(
    conn: asyncpg.Connection,
    participant_id: UUID,
    program_id: UUID,
    variant: str | None,
    enrolled_at: datetime | None,
    erased_at: datetime | None,
) -> None:
    await conn.execute(_PARTICIPANT, participant_id, program_id, variant, enrolled_at, erased_at)


async def forget_referees_of(conn: asyncpg.Connection, referrer_id: UUID) -> None:
    """An erased referrer's referees are no longer named, in referrals and in rewards."""
    await conn.execute(
        "UPDATE rm_referrals SET referee_customer_id = NULL WHERE referrer_id = $1", referrer_id
    )
    await conn.execute(
        "UPDATE rm_rewards SET recipient = NULL WHERE referrer_id = $1 AND side = 'referee'",
        referrer_id,
    )


async def insert_share(
    conn: asyncpg.Connection,
    share_id: UUID,
    program_id: UUID,
    participant_id: UUID,
    channel: str,
    shared_at: datetime,
) -> None:
    await conn.execute(_SHARE, share_id, program_id, participant_id, channel, shared_at)


async def upsert_referral(
    conn: asyncpg.Connection, referral_id: UUID, facts: dict[str, Any]
) -> None:
    await conn.execute(_REFERRAL, referral_id, *(facts.get(c) for c in _REFERRAL_COLUMNS))


async def insert_rules(
    conn: asyncpg.Connection,
    referral_id: UUID,
    decision: str,
    rules: list[tuple[str, str, bool, str]],
) -> None:
    """The (rule, action, shadow, reason) of every rule that fired in one decision."""
    if rules:
        columns = [list(c) for c in zip(*rules, strict=True)]
        await conn.execute(_RULES, referral_id, decision, *columns)


async def upsert_pending(conn: asyncpg.Connection, *values: Any) -> None:
    """(referral, program, waiting_for, code, signed_up_at, received_at, resolved_at,
    resolution, referrer)."""
    await conn.execute(_PENDING, *values)


async def upsert_conversion(
    conn: asyncpg.Connection, conversion_id: UUID, facts: dict[str, Any]
) -> None:
    await conn.execute(_CONVERSION, conversion_id, *(facts.get(c) for c in _CONVERSION_COLUMNS))


async def upsert_reward(conn: asyncpg.Connection, reward_id: UUID, facts: dict[str, Any]) -> None:
    await conn.execute(_REWARD, reward_id, *(facts.get(c) for c in _REWARD_COLUMNS))


async def upsert_milestone(conn: asyncpg.Connection, *values: Any) -> None:
    """(program, referrer, threshold, reached_at, reward_id, perk, amount, unit)."""
    await conn.execute(_MILESTONE, *values)


async def add_daily_clicks(
    conn: asyncpg.Connection,
    rows: list[tuple[UUID, date, UUID, int, int, int]],
) -> None:
    """Add (participant, day, program, clicks, attributable, invites) rows to the daily
    counts, in one statement."""
    if rows:
        columns = list(zip(*rows, strict=True))
        await conn.execute(_CLICKS, *(list(c) for c in columns))
