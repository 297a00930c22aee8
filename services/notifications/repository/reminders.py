"""Reminders: rows due at a time (share reminders, milestone nudges, and messages waiting for
their participant's enrolment), claimed by the scheduler with ``FOR UPDATE SKIP LOCKED``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


async def schedule(
    conn: asyncpg.Connection,
    *,
    program_id: UUID,
    participant_id: UUID,
    kind: str,
    dedupe: str,
    due_at: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    """Once per (participant, kind, dedupe): a second one is dropped."""
    await conn.execute(
        "INSERT INTO reminders (id, program_id, participant_id, kind, dedupe, data, due_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        uuid.uuid4(),
        program_id,
        participant_id,
        kind,
        dedupe,
        data or {},
        due_at,
    )


async def move_share_reminders(conn: asyncpg.Connection, program_id: UUID, delay_s: float) -> None:
    """The program's open share reminders, due ``delay_s`` after they were planned."""
    await conn.execute(
        "UPDATE reminders SET due_at = (data->>'scheduled_at')::timestamptz "
        "+ make_interval(secs => $2) WHERE program_id = $1 AND kind = 'share_reminder' "
        "AND done_at IS NULL AND data ? 'scheduled_at'",
        program_id,
        delay_s,
    )


async def claim_due(conn: asyncpg.Connection, limit: int) -> list[dict[str, Any]]:
    """Due reminders, locked until the end of the transaction; other replicas skip them."""
    rows = await conn.fetch(
        "SELECT id, program_id, participant_id, kind, data FROM reminders "
        "WHERE done_at IS NULL AND due_at <= now() ORDER BY due_at LIMIT $1 "
        "FOR UPDATE SKIP LOCKED",
        limit,
    )
    return [dict(r) for r in rows]


async def postpone(
    conn: asyncpg.Connection, reminder_id: UUID, data: dict[str, Any], delay_s: float
) -> None:
    await conn.execute(
        "UPDATE reminders SET data = $2, due_at = now() + make_interval(secs => $3) WHERE id = $1",
        reminder_id,
        data,
        delay_s,
    )


async def done(conn: asyncpg.Connection, reminder_id: UUID, outcome: str) -> None:
    await conn.execute(
        "UPDATE reminders SET done_at = now(), outcome = $2 WHERE id = $1", reminder_id, outcome
    )


async def cancel_for(conn: asyncpg.Connection, participant_id: UUID, outcome: str) -> None:
    await conn.execute(
        "UPDATE reminders SET done_at = now(), outcome = $2 "
        "WHERE participant_id = $1 AND done_at IS NULL",
        participant_id,
        outcome,
    )
