"""What the program routes do: create a program, publish a version (pause and resume are
versions too), read and list them, and issue or revoke a program's key. Every write and its
event (``program.published``, ``apikey.issued``, ``apikey.revoked``) commit together."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.links.programs import repository as repo
from services.links.programs.models import (
    KeyOut,
    KeyStatusOut,
    ProgramCreate,
    ProgramOut,
    VersionCreate,
    VersionOut,
    VersionPage,
)
from services.links.programs.policy import effective_from
from services.links.settings import EVENT_SOURCE
from shared.contracts import ApiKeyIssued, ApiKeyRevoked, ProgramPublished
from shared.http.auth import key_status, new_program_key, revoke_key, store_key
from shared.http.idempotency import run_idempotent
from shared.http.problems import Problem
from shared.messaging.outbox import enqueue


def program_not_found(program_id: UUID) -> Problem:
    return Problem(404, "program-not-found", f"No program {program_id}", field="program_id")


def _out(program_id: UUID, row: Any, version: int, latest: int) -> dict[str, Any]:
    return ProgramOut(
        id=program_id,
        name=row["name"],
        status=row["status"],
        version=version,
        effective_from=row["effective_from"],
        in_force=row["effective_from"] <= datetime.now(UTC),
        latest_version=latest,
        definition=row["definition"],
    ).model_dump(mode="json")


async def _publish(conn: asyncpg.Connection, program_id: UUID, version: int) -> dict[str, Any]:
    """Write ``program.published`` for one version; answer with that version."""
    row = await repo.get_version(conn, program_id, version)
    assert row is not None
    await enqueue(
        conn,
        ProgramPublished(
            program_id=program_id,
            version=version,
            effective_from=row["effective_from"],
            name=row["name"],
            status=row["status"],
            definition=row["definition"],
        ),
        source=EVENT_SOURCE,
    )
    return _out(program_id, row, version, version)


async def create_program(
    pool: asyncpg.Pool, body: ProgramCreate, idempotency_key: str | None
) -> Any:
    """A program with its first version (in force now, or from ``effective_from``)."""
    starts = effective_from(body.effective_from, datetime.now(UTC))

    async def effect(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        program_id = uuid.uuid4()
        await repo.insert_program(conn, program_id, body.name)
        version = await repo.add_version(
            conn, program_id, starts, body.definition.model_dump(mode="json")
        )
        return 201, await _publish(conn, program_id, version)

    return await run_idempotent(
        pool,
        scope="programs",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=effect,
    )


async def get_program(pool: asyncpg.Pool, program_id: UUID) -> dict[str, Any]:
    """The version in force now (or, before the first one takes effect, the first one)."""
    row = await repo.get_program(pool, program_id)
    if row is None:
        raise program_not_found(program_id)
    if row["version"] is None:
        first = await repo.get_version(pool, program_id, 1)
        assert first is not None
        row = {**dict(row), **{k: first[k] for k in ("version", "effective_from", "status")},
               "definition": first["definition"]}  # fmt: skip
    return _out(row["id"], row, row["version"], row["latest_version"])


async def publish_version(
    pool: asyncpg.Pool, program_id: UUID, body: VersionCreate
) -> dict[str, Any]:
    """A new immutable version, effective now or later. It supersedes every older one from
    its ``effective_from`` on, and keeps the program's current status."""
    starts = effective_from(body.effective_from, datetime.now(UTC))
    async with pool.acquire() as conn, conn.transaction():
        if await repo.lock_program(conn, program_id) is None:
            raise program_not_found(program_id)
        current = await repo.in_force(conn, program_id, datetime.now(UTC))
        status = current["status"] if current is not None else "active"
        version = await repo.add_version(
            conn, program_id, starts, body.definition.model_dump(mode="json"), status
        )
        return await _publish(conn, program_id, version)


async def set_status(pool: asyncpg.Pool, program_id: UUID, status: str) -> dict[str, Any]:
    """Pause and resume are versions too: the definition in force now, with a new status."""
    async with pool.acquire() as conn, conn.transaction():
        if await repo.lock_program(conn, program_id) is None:
            raise program_not_found(program_id)
        now = datetime.now(UTC)
        current = await repo.in_force(conn, program_id, now)
        if current is None:
            raise Problem(409, "program-not-in-force", "No version of this program is in force yet")
        if current["status"] == status:
            raise Problem(409, f"program-already-{status}", f"The program is already {status}")
        version = await repo.add_version(conn, program_id, now, current["definition"], status)
        return await _publish(conn, program_id, version)


async def list_versions(
    pool: asyncpg.Pool, program_id: UUID, cursor: str | None, limit: int
) -> VersionPage:
    if await repo.get_program(pool, program_id) is None:
        raise program_not_found(program_id)
    after = int(cursor[1:]) if cursor else 0
    rows = await repo.list_versions(pool, program_id, after, limit + 1)
    items = [VersionOut(**dict(r)) for r in rows[:limit]]
    next_cursor = f"v{items[-1].version}" if len(rows) > limit else None
    return VersionPage(items=items, next_cursor=next_cursor)


async def issue_key(pool: asyncpg.Pool, program_id: UUID) -> KeyOut:
    """A secret key for server-to-server calls of this program. Shown once."""
    issued = new_program_key()
    async with pool.acquire() as conn, conn.transaction():
        if await repo.get_program(conn, program_id) is None:
            raise program_not_found(program_id)
        await store_key(conn, issued.key_id, program_id, issued.key_hash)
        await enqueue(
            conn,
            ApiKeyIssued(
                key_id=issued.key_id,
                program_id=program_id,
                key_hash=issued.key_hash,
                created_at=datetime.now(UTC),
            ),
            source=EVENT_SOURCE,
        )
    return KeyOut(key_id=issued.key_id, program_id=program_id, secret_key=issued.secret)


async def revoke_program_key(pool: asyncpg.Pool, program_id: UUID, key_id: str) -> None:
    """Refused here at once, and in every other service when it applies ``apikey.revoked``."""
    async with pool.acquire() as conn, conn.transaction():
        if not await revoke_key(conn, key_id, program_id):
            raise Problem(
                404, "key-not-found", f"No active key {key_id} in this program", field="key_id"
            )
        await enqueue(
            conn,
            ApiKeyRevoked(key_id=key_id, program_id=program_id, revoked_at=datetime.now(UTC)),
            source=EVENT_SOURCE,
        )


async def key_status_of(pool: asyncpg.Pool, key_hash: str) -> KeyStatusOut:
    """Links is where keys are issued: its answer holds before the key's event has reached
    another service (``shared/http/key_directory.py``)."""
    status = await key_status(pool, key_hash)
    if status is None:
        raise Problem(404, "key-not-found", "No key with this hash", field="key_hash")
    return KeyStatusOut(key_hash=key_hash, program_id=status.program_id, revoked=status.revoked)
