"""Program versions (from ``program.published``) and their definitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.notifications.repository import Conn

# The version in force now, as a scalar subquery on ``{program}`` (a parameter or a column).
IN_FORCE = (
    "SELECT version FROM programs WHERE program_id = {program} "
    "ORDER BY (effective_from <= now()) DESC, effective_from DESC, version DESC LIMIT 1"
)

# Consumer batches are applied concurrently, each in its own transaction, and one poll can
# hold a program's publication and its first enrolments or conversions: neither transaction
# sees the other's uncommitted rows, so the publication's catch-up would miss the count (or
# the reminder) and the conversion would miss the thresholds. This lock, per program, is
# taken by the publication before it writes, and by a handler that found no program; the
# second to take it sees what the first committed.
_PROGRAM_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 0))"


async def lock_program(conn: asyncpg.Connection, program_id: UUID) -> None:
    """The program's lock, until the end of the transaction (why: see ``_PROGRAM_LOCK``)."""
    await conn.execute(_PROGRAM_LOCK, program_id)


async def insert_version(
    conn: asyncpg.Connection,
    *,
    program_id: UUID,
    version: int,
    effective_from: datetime,
    name: str,
    definition: dict[str, Any],
) -> None:
    # Only ever inserted: a published version never changes (what ``Definitions`` relies on).
    await conn.execute(
        "INSERT INTO programs (program_id, version, effective_from, name, definition) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        program_id,
        version,
        effective_from,
        name,
        definition,
    )


class Definitions:
    """Definitions by (program, version). A published version never changes (``programs`` rows
    are only ever inserted, ON CONFLICT DO NOTHING), so once read it is kept for the life of
    this object (one per process, built by the app): no invalidation is needed. Which version
    is in force is still asked of the database each time (it moves with effective_from and with
    publications handled by other replicas). The dicts are shared: callers only read them."""

    def __init__(self, max_size: int = 4096) -> None:
        self._cached: dict[tuple[UUID, int], dict[str, Any]] = {}
        self._max_size = max_size

    async def of_version(self, conn: Conn, program_id: UUID, version: int) -> dict[str, Any] | None:
        """A published version's definition, None if unknown."""
        key = (program_id, version)
        if (cached := self._cached.get(key)) is not None:
            return cached
        value = await conn.fetchval(
            "SELECT definition FROM programs WHERE program_id = $1 AND version = $2",
            program_id,
            version,
        )
        if value is not None:
            if len(self._cached) >= self._max_size:
                self._cached.clear()  # simplest bound; refilled by the next reads
            self._cached[key] = value
        return value  # type: ignore[no-any-return]

    async def get(self, conn: Conn, program_id: UUID, version: int | None = None) -> dict[str, Any]:
        """A version's definition, or the one in force now; {} before the program is known."""
        if version is not None:
            value = await self.of_version(conn, program_id, version)
            if value is not None:
                return value
        in_force = await conn.fetchval(IN_FORCE.format(program="$1"), program_id)
        if in_force is None:
            return {}
        return await self.of_version(conn, program_id, in_force) or {}

    async def published(self, conn: asyncpg.Connection, program_id: UUID) -> dict[str, Any]:
        """The definition in force; when there is none yet, read again under the program's
        lock (see ``_PROGRAM_LOCK``)."""
        definition = await self.get(conn, program_id)
        if definition:
            return definition
        await lock_program(conn, program_id)
        return await self.get(conn, program_id)
