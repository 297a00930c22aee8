"""The in-app feed (``notifications`` rows). Items are written with their delivery row, by
``deliveries.record_for_participant``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from services.notifications.repository import Conn

_COLUMNS = "id, kind, title, body, created_at, read_at"


async def latest(conn: Conn, program_id: UUID, participant_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM notifications "
        "WHERE program_id = $1 AND participant_id = $2 ORDER BY created_at DESC LIMIT 100",
        program_id,
        participant_id,
    )
    return [dict(r) for r in rows]


async def mark_read(
    conn: Conn, program_id: UUID, participant_id: UUID, notification_id: UUID
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "UPDATE notifications SET read_at = coalesce(read_at, now()) "
        f"WHERE id = $1 AND program_id = $2 AND participant_id = $3 RETURNING {_COLUMNS}",
        notification_id,
        program_id,
        participant_id,
    )
    return dict(row) if row else None


async def delete_for(conn: asyncpg.Connection, participant_id: UUID) -> None:
    await conn.execute("DELETE FROM notifications WHERE participant_id = $1", participant_id)
