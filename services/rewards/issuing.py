"""Turning a recorded conversion into rewards: the version in force, the referrer's history,
the rules, then one row per (conversion, rule, side) with its first ledger entry."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.rewards import lifecycle
from services.rewards.metrics import REWARDS_CREATED
from services.rewards.rules import BASE_RULE, Granted, History, policy_of, rewards_for
from shared.contracts import MilestoneReached, RewardCreated
from shared.contracts.sections.rewards import RewardPolicy
from shared.messaging.outbox import enqueue

SOURCE = lifecycle.SOURCE


async def lock_referrer(
    conn: asyncpg.Connection, program_id: uuid.UUID, referrer_id: uuid.UUID
) -> None:
    """Serialize one referrer's rewards across consumer instances (a rebalance can hand
    the same partition to two of them for a moment): caps and milestones read then write."""
    await conn.execute(
        f"SELECT {REFERRER_LOCK_SQL.format(param='$1')}", referrer_lock_key(program_id, referrer_id)
    )


REFERRER_LOCK_SQL = "pg_advisory_xact_lock(hashtextextended({param}, 0))"


def referrer_lock_key(program_id: uuid.UUID, referrer_id: uuid.UUID) -> str:
    return f"rewards:referrer:{program_id}:{referrer_id}"


async def lock_program_budget(conn: asyncpg.Connection, program_id: uuid.UUID) -> None:
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"rewards:budget:{program_id}"
    )


async def lock_program_versions(conn: asyncpg.Connection, program_id: uuid.UUID) -> None:
    """Serialises a program's publication with a conversion that found no version for it.
    Without it, the two can run in concurrent transactions (another partition group or
    replica): the publication sees no waiting conversion, the conversion sees no version, and
    the conversion would wait for a program that has already arrived."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"rewards:program:{program_id}"
    )


# Versions are immutable, so their parsed policies can be kept in the process.
_POLICIES: dict[tuple[uuid.UUID, int, str | None], RewardPolicy] = {}
_POLICY_CACHE_SIZE = 4096


def _policy(program_id: uuid.UUID, version: Mapping[str, Any], variant: str | None) -> RewardPolicy:
    key = (program_id, version["version"], variant)
    policy = _POLICIES.get(key)
    if policy is None:
        if len(_POLICIES) >= _POLICY_CACHE_SIZE:
            _POLICIES.clear()
        policy = _POLICIES[key] = policy_of(version["definition"], variant)
    return policy


async def version_for(
    conn: asyncpg.Connection, conversion: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The version named by attribution, else the highest version in force at the
    conversion time, so a late conversion keeps its old rules."""
    if conversion["program_version"] is not None:
        key = (conversion["program_id"], conversion["program_version"], conversion["variant"])
        if key in _POLICIES:  # the definition is not needed: the policy is cached
            return {"version": conversion["program_version"], "definition": None}
        return await conn.fetchrow(
            "SELECT version, definition FROM program_versions "
            "WHERE program_id = $1 AND version = $2",
            conversion["program_id"],
            conversion["program_version"],
        )
    return await conn.fetchrow(
        "SELECT version, definition FROM program_versions "
        "WHERE program_id = $1 AND effective_from <= $2 "
        "ORDER BY version DESC LIMIT 1",
        conversion["program_id"],
        conversion["converted_at"],
    )


_HISTORY_SQL = """
WITH month AS (SELECT date_trunc('month', $7 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start),
mine AS (
    SELECT side, recipient, unit, amount, created_at FROM rewards
    WHERE program_id = $1 AND rule = 'base' AND status <> 'reversed'
      AND ((side = 'referrer' AND recipient = $8 AND unit = $4)
        OR (side = 'referee' AND recipient = $5 AND unit = $6))
)
SELECT
    (SELECT count(DISTINCT referral_id) FROM conversions
      WHERE program_id = $1 AND referrer_id = $2 AND status = 'rewarded'
        AND referral_id <> $3) AS converted_before,
    (SELECT coalesce(array_agg(rule), '{}') FROM rewards
      WHERE program_id = $1 AND referrer_id = $2 AND rule LIKE 'milestone:%') AS milestones,
    (SELECT coalesce(sum(amount), 0) FROM mine WHERE side = 'referrer') AS referrer_lifetime,
    (SELECT coalesce(sum(amount), 0) FROM mine, month
      WHERE side = 'referrer' AND created_at >= month.start) AS referrer_month,
    (SELECT coalesce(sum(amount), 0) FROM mine WHERE side = 'referee') AS referee_lifetime,
    (SELECT coalesce(sum(amount), 0) FROM mine, month
      WHERE side = 'referee' AND created_at >= month.start) AS referee_month,
    EXISTS (SELECT 1 FROM reversals WHERE conversion_id = $9 AND full_reversal) AS refunded,
    (SELECT coalesce(sum(refunded_amount), 0) FROM reversals
      WHERE conversion_id = $9 AND NOT full_reversal) AS partly_refunded
"""


async def history_for(
    conn: asyncpg.Connection, conversion: asyncpg.Record, policy: RewardPolicy, now: datetime
) -> tuple[bool, int, History]:
    """What the rules read, in one round trip: whether the conversion was fully refunded
    already and how much was partly refunded, the referrer's converted count, milestones
    granted, what each recipient already holds (lifetime, this month); the budget used."""
    budget_used = 0
    if policy.budget is not None:
        # Its own statement: inside the shared one, a generic plan scans every reward of the
        # program even when there is no budget.
        budget_used = await conn.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM rewards WHERE program_id = $1 AND unit = $2 "
            "AND status <> 'reversed'",
            conversion["program_id"],
            policy.budget_unit,
        )
    row = await conn.fetchrow(
        _HISTORY_SQL,
        conversion["program_id"],
        conversion["referrer_id"],
        conversion["referral_id"],
        policy.referrer.unit if policy.referrer else None,
        conversion["referee_customer_id"],
        policy.referee.unit if policy.referee else None,
        now,
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
            budget_used=int(budget_used),
            milestones_granted=frozenset(int(r.split(":", 1)[1]) for r in row["milestones"]),
        ),
    )


_INSERT_REWARD_SQL = """
WITH r AS (
    INSERT INTO rewards (id, conversion_id, program_id, program_version, variant, referrer_id,
        rule, side, recipient, amount, requested_amount, unit, perk, status, fulfilment,
        available_at, issued_at, next_attempt_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
    ON CONFLICT DO NOTHING RETURNING id
),
e AS (
    INSERT INTO ledger_entries (reward_id, kind)
    SELECT id, $19::text FROM r WHERE $19::text IS NOT NULL RETURNING id
),
p AS (
    INSERT INTO ledger_postings (entry_id, account, unit, amount)
    SELECT e.id, v.account, $12, v.amount FROM e,
        (VALUES ($20::text, $10::bigint), ($21::text, -$10::bigint)) AS v (account, amount)
)
SELECT count(*) = 1 FROM r
"""


async def reward_conversion(conn: asyncpg.Connection, conversion_id: uuid.UUID) -> int:
    """Record the rewards of one conversion; returns how many rows were created now.

    Leaves the conversion waiting when its program version has not arrived yet; the
    ``program.published`` handler calls this again when it does."""
    head = await conn.fetchrow(
        "SELECT program_id, referrer_id FROM conversions WHERE conversion_id = $1",
        conversion_id,
    )
    if head is None:
        return 0
    await lock_referrer(conn, head["program_id"], head["referrer_id"])
    conversion = await conn.fetchrow(
        "SELECT * FROM conversions WHERE conversion_id = $1 FOR UPDATE", conversion_id
    )
    if conversion is None:
        return 0
    return await reward_recorded(conn, conversion)


async def reward_recorded(conn: asyncpg.Connection, conversion: asyncpg.Record) -> int:
    """The rewards of a conversion row the caller has locked (and the referrer too)."""
    if conversion["status"] != "awaiting_program":
        return 0
    conversion_id = conversion["conversion_id"]
    version = await version_for(conn, conversion)
    if version is None:
        # A publication may be committing right now: wait for it, then look again (a new
        # statement sees what committed meanwhile).
        await lock_program_versions(conn, conversion["program_id"])
        version = await version_for(conn, conversion)
        if version is None:
            return 0
    policy = _policy(conversion["program_id"], version, conversion["variant"])
    if policy.budget is not None:
        await lock_program_budget(conn, conversion["program_id"])
    now = lifecycle.now_utc()
    refunded, partly_refunded, history = await history_for(conn, conversion, policy, now)
    if refunded:
        # Refunded before we saw it: nothing to grant.
        await _set_status(conn, conversion_id, "reversed", version["version"])
        return 0
    lines = rewards_for(
        policy,
        referrer_id=conversion["referrer_id"],
        referee_customer_id=conversion["referee_customer_id"],
        conversion_amount=max(0, conversion["amount"] - partly_refunded),
        sequence=conversion["sequence"],
        history=history,
    )
    hold = timedelta(days=policy.hold_days)
    created = 0
    for line in lines:
        reward_id = uuid.uuid4()
        status = lifecycle.initial_state(line.amount, hold, policy.fulfilment.kind)
        reward = {
            "id": reward_id,
            "conversion_id": conversion_id,
            "referral_id": conversion["referral_id"],
            "converted_at": conversion["converted_at"],
            "program_id": conversion["program_id"],
            "program_version": version["version"],
            "variant": conversion["variant"],
            "referrer_id": conversion["referrer_id"],
            "rule": line.rule,
            "side": line.side,
            "recipient": line.recipient,
            "amount": line.amount,
            "unit": line.unit,
            "perk": line.perk,
            "status": status,
            "fulfilment": policy.fulfilment.kind,
        }
        # The row and its first ledger entry in one statement (one round trip).
        entry = lifecycle.first_entry(reward)
        kind, debit, credit = entry if entry is not None else (None, None, None)
        inserted = await conn.fetchval(
            _INSERT_REWARD_SQL,
            reward_id,
            conversion_id,
            conversion["program_id"],
            version["version"],
            conversion["variant"],
            conversion["referrer_id"],
            line.rule,
            line.side,
            line.recipient,
            line.amount,
            line.asked,
            line.unit,
            line.perk,
            status,
            policy.fulfilment.kind,
            None if status == "capped" else now + hold,
            now if status == "issued" else None,
            now if status == "available" else None,
            kind,
            debit,
            credit,
        )
        if not inserted:
            continue
        created += 1
        REWARDS_CREATED.labels(status).inc()
        await enqueue(
            conn,
            RewardCreated(
                reward_id=reward_id,
                conversion_id=conversion_id,
                referral_id=conversion["referral_id"],
                program_id=conversion["program_id"],
                program_version=version["version"],
                referrer_id=conversion["referrer_id"],
                side=line.side,
                recipient=line.recipient,
                amount=line.amount,
                unit=line.unit,
                status=status,
                available_at=None if status == "capped" else now + hold,
                created_at=now,
                variant=conversion["variant"],
                rule=line.rule,
                perk=line.perk,
            ),
            source=SOURCE,
        )
        if line.rule != BASE_RULE:
            threshold = int(line.rule.split(":", 1)[1])
            await enqueue(
                conn,
                MilestoneReached(
                    program_id=conversion["program_id"],
                    referrer_id=conversion["referrer_id"],
                    threshold=threshold,
                    reward_id=reward_id,
                    perk=line.perk,
                    amount=None if line.perk else line.amount,
                    unit=None if line.perk else line.unit,
                    reached_at=now,
                ),
                source=SOURCE,
            )
        await lifecycle.after_first_entry(conn, reward, now=now)
    await _set_status(conn, conversion_id, "rewarded", version["version"])
    return created


async def _set_status(
    conn: asyncpg.Connection, conversion_id: uuid.UUID, status: str, version: int
) -> None:
    await conn.execute(
        "UPDATE conversions SET status = $2, program_version = $3 WHERE conversion_id = $1",
        conversion_id,
        status,
        version,
    )
