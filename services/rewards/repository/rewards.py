"""Reward rows: creation, the history the rules read, state transitions, due work and what
the API shows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.rewards.rules import Granted, History
from shared.contracts.sections.rewards import RewardPolicy

Executor = asyncpg.Connection | asyncpg.Pool

# The columns a new reward is written with (the others take their defaults).
_NEW_COLUMNS = (
    "id",
    "conversion_id",
    "program_id",
    "program_version",
    "variant",
    "referrer_id",
    "rule",
    "side",
    "recipient",
    "amount",
    "requested_amount",
    "unit",
    "perk",
    "status",
    "fulfilment",
    "available_at",
    "issued_at",
    "next_attempt_at",
)
# New rewards from a JSON array of rows; a reward that exists for its (conversion, rule,
# side) is skipped.
_INSERT_MANY_SQL = (
    f"INSERT INTO rewards ({', '.join(_NEW_COLUMNS)}) SELECT {', '.join(_NEW_COLUMNS)} "
    "FROM jsonb_populate_recordset(NULL::rewards, $1::text::jsonb) "
    "ON CONFLICT DO NOTHING RETURNING id"
)


def insertion(rewards: Iterable[Mapping[str, Any]]) -> tuple[str, str]:
    """The statement that inserts new rewards (those that do not exist for their (conversion,
    rule, side)) and returns the ids it inserted, and its one argument (``$1``). The ledger
    runs it together with the rewards' first entries (``ledger.grant``)."""
    rows = [{k: reward[k] for k in _NEW_COLUMNS} for reward in rewards]
    return _INSERT_MANY_SQL, json.dumps(rows, default=str)


# A monthly cap counts the rewards of purchases made in the calendar month (UTC) the new
# purchase was made in, whenever each arrived: a late purchase is capped as on its day. What a
# recipient holds is kept per month in ``holdings`` (migration 008), so this reads a few rows
# whatever the recipient's history.
_HISTORY_SQL = """
WITH held AS (
    SELECT
        coalesce(sum(amount) FILTER (WHERE side = 'referrer'), 0) AS referrer_lifetime,
        coalesce(sum(amount) FILTER (WHERE side = 'referrer' AND month = purchase_month($7)), 0)
            AS referrer_month,
        coalesce(sum(amount) FILTER (WHERE side = 'referee'), 0) AS referee_lifetime,
        coalesce(sum(amount) FILTER (WHERE side = 'referee' AND month = purchase_month($7)), 0)
            AS referee_month
    FROM holdings
    WHERE program_id = $1
      AND ((side = 'referrer' AND recipient = $8 AND unit = $4)
        OR (side = 'referee' AND recipient = $5 AND unit = $6))
)
SELECT
    (SELECT count(DISTINCT referral_id) FROM conversions
      WHERE program_id = $1 AND referrer_id = $2 AND status = 'rewarded'
        AND referral_id <> $3) AS converted_before,
    (SELECT coalesce(array_agg(rule), '{}') FROM rewards
      WHERE program_id = $1 AND referrer_id = $2 AND rule LIKE 'milestone:%'
        AND status <> 'reversed') AS milestones,
    held.*,
    EXISTS (SELECT 1 FROM reversals WHERE conversion_id = $9 AND full_reversal) AS refunded,
    (SELECT coalesce(sum(refunded_amount), 0) FROM reversals
      WHERE conversion_id = $9 AND NOT full_reversal) AS partly_refunded
FROM held
"""


async def history(
    conn: asyncpg.Connection, conversion: Mapping[str, Any], policy: RewardPolicy
) -> tuple[bool, int, History]:
    """What the rules read, in one round trip: whether the conversion was fully refunded
    already and how much was partly refunded, the referrer's converted count, milestones
    granted (and not reversed), what each recipient already holds (lifetime, and in the
    month the conversion happened); the budget used."""
    used = 0
    if policy.budget is not None and policy.budget_unit is not None:
        # Its own statement: inside the shared one, a generic plan scans every reward of the
        # program even when there is no budget.
        used = await budget_used(conn, conversion["program_id"], policy.budget_unit)
    row = await conn.fetchrow(
        _HISTORY_SQL,
        conversion["program_id"],
        conversion["referrer_id"],
        conversion["referral_id"],
        policy.referrer.unit if policy.referrer else None,
        conversion["referee_customer_id"],
        policy.referee.unit if policy.referee else None,
        conversion["converted_at"],
        str(conversion["referrer_id"]),
        conversion["conversion_id"],
    )
    return (
        row["refunded"],
        int(row["partly_refunded"]),
        History(
            converted_before=int(row["converted_before"]),
            referrer=Granted(int(row["referrer_lifetime"]), int(row["referrer_month"])),
            referee=Granted(int(row["referee_lifetime"]), int(row["referee_month"])),
            budget_used=used,
            milestones_granted=frozenset(int(r.split(":", 1)[1]) for r in row["milestones"]),
        ),
    )


async def budget_used(conn: Executor, program_id: UUID, unit: str) -> int:
    """What the program's rewards not reversed take of its budget."""
    used = await conn.fetchval(
        "SELECT coalesce(sum(amount), 0) FROM rewards WHERE program_id = $1 AND unit = $2 "
        "AND status <> 'reversed'",
        program_id,
        unit,
    )
    return int(used)


async def load_for_update(conn: asyncpg.Connection, reward_id: UUID) -> asyncpg.Record | None:
    """The reward with its conversion's ``referral_id`` and ``converted_at``, row-locked for a
    transition."""
    return await conn.fetchrow(
        "SELECT r.*, c.referral_id, c.converted_at FROM rewards r "
        "JOIN conversions c USING (conversion_id) WHERE r.id = $1 FOR UPDATE OF r",
        reward_id,
    )


async def owner(conn: asyncpg.Connection, reward_id: UUID) -> asyncpg.Record | None:
    """``program_id`` and ``referrer_id`` of a reward (to lock the referrer first)."""
    return await conn.fetchrow(
        "SELECT program_id, referrer_id FROM rewards WHERE id = $1", reward_id
    )


async def status(conn: asyncpg.Connection, reward_id: UUID) -> str | None:
    return await conn.fetchval("SELECT status FROM rewards WHERE id = $1", reward_id)


async def base_of_conversion(conn: asyncpg.Connection, conversion_id: UUID) -> list[UUID]:
    """The ids of a conversion's base rewards (its milestones are the referrer's, not its
    own: see ``milestones_held``)."""
    rows = await conn.fetch(
        "SELECT id FROM rewards WHERE conversion_id = $1 AND rule = 'base' ORDER BY side",
        conversion_id,
    )
    return [r["id"] for r in rows]


async def milestones_held(
    conn: asyncpg.Connection, program_id: UUID, referrer_id: UUID, *, above: int
) -> list[UUID]:
    """The ids of the referrer's milestone rewards with a threshold above ``above`` that
    could still be taken back (neither reversed nor failed), highest threshold first."""
    rows = await conn.fetch(
        "SELECT id FROM rewards WHERE program_id = $1 AND referrer_id = $2 "
        "AND rule LIKE 'milestone:%' AND status <> 'reversed' AND status <> 'failed' "
        "AND split_part(rule, ':', 2)::int > $3 ORDER BY split_part(rule, ':', 2)::int DESC",
        program_id,
        referrer_id,
        above,
    )
    return [r["id"] for r in rows]


async def mark_available(conn: asyncpg.Connection, reward_id: UUID, now: datetime) -> None:
    """Available, with its first delivery attempt due now."""
    await conn.execute(
        "UPDATE rewards SET status = 'available', available_at = coalesce(available_at, $2), "
        "next_attempt_at = $2 WHERE id = $1",
        reward_id,
        now,
    )


async def mark_issued(
    conn: asyncpg.Connection, reward_id: UUID, now: datetime, coupon_code: str | None
) -> None:
    await conn.execute(
        "UPDATE rewards SET status = 'issued', issued_at = $2, coupon_code = $3, "
        "available_at = coalesce(available_at, $2), next_attempt_at = NULL WHERE id = $1",
        reward_id,
        now,
        coupon_code,
    )


async def mark_failed(conn: asyncpg.Connection, reward_id: UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE rewards SET status = 'failed', failure_reason = $2, next_attempt_at = NULL "
        "WHERE id = $1",
        reward_id,
        reason,
    )


async def mark_reversed(conn: asyncpg.Connection, reward_id: UUID, now: datetime) -> None:
    await conn.execute(
        "UPDATE rewards SET status = 'reversed', reversed_at = $2, next_attempt_at = NULL "
        "WHERE id = $1",
        reward_id,
        now,
    )


async def reduce_amount(conn: asyncpg.Connection, reward_id: UUID, take: int) -> None:
    await conn.execute("UPDATE rewards SET amount = amount - $2 WHERE id = $1", reward_id, take)


async def claim_due_holds(conn: asyncpg.Connection, now: datetime, limit: int) -> list[UUID]:
    """Pending rewards whose hold ended, locked until the caller's transaction ends (another
    replica skips them)."""
    rows = await conn.fetch(
        "SELECT id FROM rewards WHERE status = 'pending' AND available_at <= $1 "
        "ORDER BY available_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [r["id"] for r in rows]


async def claim_due_webhooks(conn: asyncpg.Connection, now: datetime, limit: int) -> list[UUID]:
    """Available webhook rewards whose next call is due, locked like ``claim_due_holds``."""
    rows = await conn.fetch(
        "SELECT id FROM rewards WHERE status = 'available' AND fulfilment = 'webhook' "
        "AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 "
        "FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [r["id"] for r in rows]


async def count_attempt(conn: asyncpg.Connection, reward_id: UUID, attempts: int) -> None:
    await conn.execute("UPDATE rewards SET attempts = $2 WHERE id = $1", reward_id, attempts)


async def schedule_retry(
    conn: asyncpg.Connection, reward_id: UUID, attempts: int, at: datetime, error: str
) -> None:
    await conn.execute(
        "UPDATE rewards SET attempts = $2, next_attempt_at = $3, failure_reason = $4 WHERE id = $1",
        reward_id,
        attempts,
        at,
        error,
    )


_PUBLIC_COLUMNS = (
    "id, conversion_id, rule, side, amount, requested_amount, unit, perk, status, "
    "program_version, variant, fulfilment, coupon_code, available_at, issued_at, "
    "failure_reason, reversed_at"
)


async def of_participant(
    conn: Executor, program_id: UUID, participant_id: UUID, customer_hash: str | None = None
) -> list[asyncpg.Record]:
    """A participant's rewards (what the API shows of them), oldest first: as a referrer, and
    as the referee of someone else's referral when their customer id's hash is known (the
    referee's id is in clear, or ``erased:<sha256>`` once that referrer was erased)."""
    return await conn.fetch(
        f"SELECT {_PUBLIC_COLUMNS}, created_at FROM rewards "
        "WHERE program_id = $1 AND side = 'referrer' AND recipient = $2 "
        f"UNION ALL SELECT {_PUBLIC_COLUMNS}, created_at FROM rewards "
        "WHERE program_id = $1 AND side = 'referee' AND $3::text IS NOT NULL "
        "AND (rewards_customer_hash(recipient) = $3 OR recipient = 'erased:' || $3) "
        "ORDER BY created_at, rule, side",
        program_id,
        str(participant_id),
        customer_hash,
    )


async def totals(conn: Executor, program_id: UUID) -> list[asyncpg.Record]:
    """Per unit and status: ``amount`` granted and ``cut`` (what caps took off)."""
    return await conn.fetch(
        "SELECT unit, status, sum(amount) AS amount, "
        "sum(coalesce(requested_amount, amount) - amount) AS cut FROM rewards "
        "WHERE program_id = $1 GROUP BY unit, status",
        program_id,
    )
