"""A program's own templates, per trigger, locale and experiment variant ('' for none)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.notifications.render import Source
from services.notifications.repository import Conn

_COLUMNS = "trigger, locale, variant, subject, body, html, updated_at"


async def of_trigger(
    conn: Conn, program_id: UUID, trigger: str, locales: list[str], variants: list[str]
) -> dict[tuple[str, str], Source]:
    """The program's templates of ``trigger`` in ``locales`` and ``variants``, by (locale,
    variant)."""
    rows = await conn.fetch(
        "SELECT locale, variant, subject, body, html FROM templates "
        "WHERE program_id = $1 AND trigger = $2 AND locale = ANY($3::text[]) "
        "AND variant = ANY($4::text[])",
        program_id,
        trigger,
        locales,
        variants,
    )
    return {(r[0], r[1]): Source(r[2], r[3], r[4]) for r in rows}


async def list_all(conn: Conn, program_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM templates WHERE program_id = $1 ORDER BY trigger, locale, variant",
        program_id,
    )
    return [dict(r) for r in rows]


async def put(
    conn: Conn,
    program_id: UUID,
    trigger: str,
    locale: str,
    variant: str,
    source: Source,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO templates (program_id, trigger, locale, variant, subject, body, html) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (program_id, trigger, locale, variant) "
        "DO UPDATE SET subject = EXCLUDED.subject, body = EXCLUDED.body, html = EXCLUDED.html, "
        f"updated_at = now() RETURNING {_COLUMNS}",
        program_id,
        trigger,
        locale,
        variant,
        source.subject,
        source.body,
        source.html,
    )
    return dict(row)


async def delete(conn: Conn, program_id: UUID, trigger: str, locale: str, variant: str) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM templates WHERE program_id = $1 AND trigger = $2 AND locale = $3 "
        "AND variant = $4 RETURNING true",
        program_id,
        trigger,
        locale,
        variant,
    )
    return bool(deleted)
