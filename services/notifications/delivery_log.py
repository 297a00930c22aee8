"""The delivery log: every message with its status and why it was not sent, every attempt with
its error and timing; and redelivery of one webhook message on request."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from services.notifications.repository import Conn, deliveries


async def _with_attempts(conn: Conn, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with its ``attempt_log``; ``next_attempt_at`` only while pending."""
    by_delivery: dict[UUID, list[dict[str, Any]]] = {}
    for a in await deliveries.attempts_of(conn, [r["id"] for r in rows]):
        by_delivery.setdefault(a.pop("delivery_id"), []).append(a)
    return [
        {
            **r,
            "next_attempt_at": r["next_attempt_at"] if r["status"] == "pending" else None,
            "attempt_log": by_delivery.get(r["id"], []),
        }
        for r in rows
    ]


async def page(
    conn: Conn,
    program_id: UUID,
    *,
    participant_id: UUID | None,
    channel: str | None,
    status: str | None,
    triggers: list[str] | None,
    endpoint_id: UUID | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` messages, newest first, and whether more follow."""
    rows = await deliveries.page(
        conn,
        program_id,
        participant_id=participant_id,
        channel=channel,
        status=status,
        triggers=triggers,
        endpoint_id=endpoint_id,
        before=before,
        limit=limit + 1,
    )
    return await _with_attempts(conn, rows[:limit]), len(rows) > limit


async def get(conn: Conn, program_id: UUID, delivery_id: UUID) -> dict[str, Any] | None:
    row = await deliveries.get(conn, program_id, delivery_id)
    if row is None:
        return None
    [out] = await _with_attempts(conn, [row])
    return out


class NotRedeliverable(Exception):
    pass


async def redeliver(conn: Conn, program_id: UUID, delivery_id: UUID) -> dict[str, Any] | None:
    """Send one webhook message again, with the same ``webhook-id`` (receivers that already
    have it can drop it) and a fresh retry schedule. None if there is no such message;
    raises ``NotRedeliverable`` for another channel or a deleted endpoint."""
    current = await deliveries.get(conn, program_id, delivery_id)
    if current is None:
        return None
    if current["channel"] != "webhook":
        raise NotRedeliverable("Only webhook messages can be redelivered")
    if current["endpoint_id"] is None:
        raise NotRedeliverable("Its endpoint was deleted")
    await deliveries.redeliver(conn, delivery_id)
    return await get(conn, program_id, delivery_id)
