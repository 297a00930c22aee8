"""Turning a recorded conversion into rewards, ledger entries and ``reward.issued`` events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from services.rewards import ledger
from services.rewards.rules import rewards_for
from shared.contracts import RewardIssued
from shared.contracts.sections.rewards import RewardPolicy
from shared.messaging.outbox import enqueue

SOURCE = "/services/rewards"


async def version_for(
    conn: asyncpg.Connection, conversion: asyncpg.Record
) -> asyncpg.Record | None:
    """The version named by attribution, else the one in force at the conversion time."""
    if conversion["program_version"] is not None:
        return await conn.fetchrow(
            "SELECT version, definition FROM program_versions "
            "WHERE program_id = $1 AND version = $2",
            conversion["program_id"],
            conversion["program_version"],
        )
    return await conn.fetchrow(
        "SELECT version, definition FROM program_versions "
        "WHERE program_id = $1 AND effective_from <= $2 ORDER BY version DESC LIMIT 1",
        conversion["program_id"],
        conversion["converted_at"],
    )


async def reward_conversion(conn: asyncpg.Connection, conversion_id: uuid.UUID) -> int:
    """Issue the rewards of one conversion; returns how many were issued now.

    Leaves the conversion waiting when its program version has not arrived yet; the
    ``program.published`` handler calls this again when it does."""
    conversion = await conn.fetchrow(
        "SELECT * FROM conversions WHERE conversion_id = $1 FOR UPDATE", conversion_id
    )
    if conversion is None or conversion["status"] == "rewarded":
        return 0
    version = await version_for(conn, conversion)
    if version is None:
        return 0
    settings = RewardPolicy.model_validate(version["definition"].get("rewards") or {})
    issued = 0
    now = datetime.now(UTC)
    for line in rewards_for(
        settings,
        referrer_id=conversion["referrer_id"],
        referee_customer_id=conversion["referee_customer_id"],
    ):
        reward_id = uuid.uuid4()
        inserted = await conn.fetchval(
            "INSERT INTO rewards (id, conversion_id, program_id, program_version, referrer_id, "
            "side, recipient, amount, unit, status, issued_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'issued', $10) "
            "ON CONFLICT (conversion_id, side) DO NOTHING RETURNING true",
            reward_id,
            conversion_id,
            conversion["program_id"],
            version["version"],
            conversion["referrer_id"],
            line.side,
            line.recipient,
            line.amount,
            line.unit,
            now,
        )
        if not inserted:
            continue
        await ledger.post(
            conn,
            reward_id=reward_id,
            kind="issue",
            debit=ledger.program_account(conversion["program_id"]),
            credit=ledger.recipient_account(conversion["program_id"], line.side, line.recipient),
            amount=line.amount,
            unit=line.unit,
        )
        await enqueue(
            conn,
            RewardIssued(
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
                issued_at=now,
            ),
            source=SOURCE,
        )
        issued += 1
    await conn.execute(
        "UPDATE conversions SET status = 'rewarded', program_version = $2 WHERE conversion_id = $1",
        conversion_id,
        version["version"],
    )
    return issued
