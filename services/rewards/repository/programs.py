"""Program versions (as published, immutable) and the webhook secrets rewards generates."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.rewards.rules import policy_of
from shared.contracts.sections.rewards import RewardPolicy

Executor = asyncpg.Connection | asyncpg.Pool


async def insert_version(
    conn: asyncpg.Connection,
    program_id: UUID,
    version: int,
    effective_from: datetime,
    definition: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO program_versions (program_id, version, effective_from, definition) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        program_id,
        version,
        effective_from,
        definition,
    )


async def version_named(
    conn: asyncpg.Connection, program_id: UUID, version: int
) -> asyncpg.Record | None:
    """``version`` and ``definition`` of one version."""
    return await conn.fetchrow(
        "SELECT version, definition FROM program_versions WHERE program_id = $1 AND version = $2",
        program_id,
        version,
    )


async def version_in_force(
    conn: asyncpg.Connection, program_id: UUID, at: datetime
) -> asyncpg.Record | None:
    """``version`` and ``definition`` of the highest version in force at ``at``."""
    return await conn.fetchrow(
        "SELECT version, definition FROM program_versions "
        "WHERE program_id = $1 AND effective_from <= $2 "
        "ORDER BY version DESC LIMIT 1",
        program_id,
        at,
    )


async def current_policy(pool: Executor, program_id: UUID, variant: str | None) -> RewardPolicy:
    """The reward policy in force now (an empty one before the first version)."""
    definition = await pool.fetchval(
        "SELECT definition FROM program_versions WHERE program_id = $1 AND effective_from <= now() "
        "ORDER BY version DESC LIMIT 1",
        program_id,
    )
    return policy_of(definition or {}, variant)


async def policy_of_reward(conn: asyncpg.Connection, reward: Any) -> RewardPolicy:
    """The policy a reward was computed with: its version and variant."""
    definition = await conn.fetchval(
        "SELECT definition FROM program_versions WHERE program_id = $1 AND version = $2",
        reward["program_id"],
        reward["program_version"],
    )
    return policy_of(definition or {}, reward["variant"])


async def add_webhook_secret(conn: asyncpg.Connection, program_id: UUID, secret: str) -> None:
    """The program's secret, unless it has one already."""
    await conn.execute(
        "INSERT INTO program_secrets (program_id, webhook_secret) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING",
        program_id,
        secret,
    )


async def webhook_secret(conn: Executor, program_id: UUID) -> str | None:
    return await conn.fetchval(
        "SELECT webhook_secret FROM program_secrets WHERE program_id = $1", program_id
    )
