"""Transaction-scoped advisory locks that serialize the read-then-write steps of rewards
across consumer instances and replicas."""

from __future__ import annotations

from uuid import UUID

import asyncpg

# Also used inside a statement (the conversion insert takes it), hence the placeholder.
REFERRER_LOCK_SQL = "pg_advisory_xact_lock(hashtextextended({param}, 0))"


def referrer_lock_key(program_id: UUID, referrer_id: UUID) -> str:
    return f"rewards:referrer:{program_id}:{referrer_id}"


async def lock_referrer(conn: asyncpg.Connection, program_id: UUID, referrer_id: UUID) -> None:
    """Serialize one referrer's rewards across consumer instances (a rebalance can hand
    the same partition to two of them for a moment): caps and milestones read then write."""
    await conn.execute(
        f"SELECT {REFERRER_LOCK_SQL.format(param='$1')}", referrer_lock_key(program_id, referrer_id)
    )


async def lock_program_budget(conn: asyncpg.Connection, program_id: UUID) -> None:
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"rewards:budget:{program_id}"
    )


async def lock_program_versions(conn: asyncpg.Connection, program_id: UUID) -> None:
    """Serialises a program's publication with a conversion that found no version for it.
    Without it, the two can run in concurrent transactions (another partition group or
    replica): the publication sees no waiting conversion, the conversion sees no version, and
    the conversion would wait for a program that has already arrived."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"rewards:program:{program_id}"
    )
