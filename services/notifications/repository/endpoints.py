"""Webhook endpoints a program registers, their secrets, and their run of failures."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.notifications.repository import Conn

# What the API shows (never the secrets).
_COLUMNS = (
    "id, program_id, url, event_types, consecutive_failures, disabled_at, disabled_reason, "
    "created_at, previous_expires_at"
)


async def create(
    conn: Conn, program_id: UUID, url: str, event_types: list[str], secret: str
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO webhook_endpoints (id, program_id, url, event_types, secret) "
        f"VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
        uuid.uuid4(),
        program_id,
        url,
        event_types,
        secret,
    )
    return dict(row)


async def list_all(conn: Conn, program_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE program_id = $1 ORDER BY created_at",
        program_id,
    )
    return [dict(r) for r in rows]


async def get(conn: Conn, program_id: UUID, endpoint_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND program_id = $2",
        endpoint_id,
        program_id,
    )
    return dict(row) if row else None


async def set_url(conn: asyncpg.Connection, endpoint_id: UUID, url: str) -> None:
    await conn.execute("UPDATE webhook_endpoints SET url = $2 WHERE id = $1", endpoint_id, url)


async def set_event_types(
    conn: asyncpg.Connection, endpoint_id: UUID, event_types: list[str]
) -> None:
    await conn.execute(
        "UPDATE webhook_endpoints SET event_types = $2 WHERE id = $1", endpoint_id, event_types
    )


async def enable(conn: asyncpg.Connection, endpoint_id: UUID) -> None:
    await conn.execute(
        "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, "
        "consecutive_failures = 0 WHERE id = $1",
        endpoint_id,
    )


async def disable_on_request(conn: asyncpg.Connection, endpoint_id: UUID) -> None:
    await conn.execute(
        "UPDATE webhook_endpoints SET disabled_at = coalesce(disabled_at, now()), "
        "disabled_reason = coalesce(disabled_reason, 'disabled on request') WHERE id = $1",
        endpoint_id,
    )


async def rotate_secret(conn: Conn, endpoint_id: UUID, secret: str, until: datetime) -> None:
    """The new secret signs from now; the current one too, until ``until``."""
    await conn.execute(
        "UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = $3, "
        "secret = $2 WHERE id = $1",
        endpoint_id,
        secret,
        until,
    )


async def delete(conn: asyncpg.Connection, endpoint_id: UUID) -> None:
    await conn.execute("DELETE FROM webhook_endpoints WHERE id = $1", endpoint_id)


async def signing(conn: Conn, ids: set[UUID]) -> dict[UUID, asyncpg.Record]:
    """URL and secrets of each endpoint, by id (deleted ones are missing)."""
    if not ids:
        return {}
    rows = await conn.fetch(
        "SELECT id, url, secret, previous_secret, previous_expires_at "
        "FROM webhook_endpoints WHERE id = ANY($1::uuid[])",
        list(ids),
    )
    return {r["id"]: r for r in rows}


async def succeeded(conn: asyncpg.Connection, endpoint_id: UUID) -> None:
    await conn.execute(
        "UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE id = $1", endpoint_id
    )


async def failed(conn: asyncpg.Connection, endpoint_id: UUID) -> int | None:
    """Failures in a row now; None if the endpoint was deleted meanwhile."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1 "
        "WHERE id = $1 RETURNING consecutive_failures",
        endpoint_id,
    )


async def disable_for_failing(conn: asyncpg.Connection, endpoint_id: UUID, reason: str) -> bool:
    """True if this call disabled it (it was enabled)."""
    disabled = await conn.fetchval(
        "UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = $2 "
        "WHERE id = $1 AND disabled_at IS NULL RETURNING true",
        endpoint_id,
        reason,
    )
    return bool(disabled)


async def count_disabled(conn: Conn) -> int:
    return int(
        await conn.fetchval("SELECT count(*) FROM webhook_endpoints WHERE disabled_at IS NOT NULL")
    )
