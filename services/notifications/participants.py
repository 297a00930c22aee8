"""What a participant sees and chooses: their in-app feed, their email preferences (also set by
a signed unsubscribe link), and the erasure of what is held about them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from services.notifications.repository import Conn, deliveries, feed, reminders
from services.notifications.repository import participants as stored
from services.notifications.unsubscribe import CATEGORIES, LINK_CATEGORY, read_token


async def latest_feed(
    conn: Conn, program_id: UUID, participant_id: UUID
) -> list[dict[str, Any]] | None:
    """The participant's latest feed items; None when the participant is not the program's.
    The service knows participants from ``participant.enrolled``: one enrolled in another
    program is not this one's; one not enrolled yet is this program's only if the program's
    events already gave them feed items (a reward before the enrolment does), otherwise
    unknown, which reads the same as another program's (404)."""
    items = await feed.latest(conn, program_id, participant_id)
    owner = await stored.program_of(conn, participant_id)
    if owner != program_id and not (owner is None and items):
        return None
    return items


async def mark_read(
    conn: Conn, program_id: UUID, participant_id: UUID, notification_id: UUID
) -> dict[str, Any] | None:
    """The item, read; None if the participant has no such item."""
    return await feed.mark_read(conn, program_id, participant_id, notification_id)


async def preferences(
    pool: asyncpg.Pool, program_id: UUID, participant_id: UUID
) -> dict[str, bool] | None:
    """The stored choices by category (a missing one means subscribed); None when the
    participant is not the program's."""
    if await stored.program_of(pool, participant_id) != program_id:
        return None
    return await stored.preferences(pool, participant_id)


async def set_preferences(
    pool: asyncpg.Pool, program_id: UUID, participant_id: UUID, choices: dict[str, bool | None]
) -> dict[str, bool] | None:
    """Sets the categories given (None: left as is); None when the participant is not the
    program's."""
    if await stored.program_of(pool, participant_id) != program_id:
        return None
    async with pool.acquire() as conn, conn.transaction():
        for category in CATEGORIES:
            value = choices.get(category)
            if value is not None:
                await stored.set_preference(
                    conn, program_id, participant_id, category, value, "api"
                )
    return await stored.preferences(pool, participant_id)


async def unsubscribe(
    pool: asyncpg.Pool, key: bytes, token: str, *, transactional_too: bool = False
) -> list[str] | None:
    """Unsubscribes the token's participant from marketing mail (whatever the link's category:
    old links named the mail's), and from transactional mail too only when they chose so
    explicitly; the categories stopped are returned. None when the token is not valid or its
    participant unknown. Nothing is ever turned on here."""
    found = read_token(key, token)
    if found is None:
        return None
    participant_id, _ = found
    program_id = await stored.program_of(pool, participant_id)
    if program_id is None:
        return None
    stopped = [LINK_CATEGORY, "transactional"] if transactional_too else [LINK_CATEGORY]
    async with pool.acquire() as conn, conn.transaction():
        for category in stopped:
            await stored.set_preference(conn, program_id, participant_id, category, False, "link")
    return stopped


async def erase(conn: asyncpg.Connection, participant_id: UUID, program_id: UUID) -> None:
    """Drop the personal data held about a participant. The delivery log keeps its rows (what
    was sent when, for audit) without the address or the rendered content. A tombstone row
    keeps a late enrolment event from bringing the data back."""
    await stored.erase(conn, participant_id, program_id)
    await deliveries.erase_content(conn, participant_id)
    await feed.delete_for(conn, participant_id)
    await reminders.cancel_for(conn, participant_id, "participant erased")
