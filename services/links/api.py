"""Program, key and participant management (admin key, or the program's own key)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from services.links import repository as repo
from services.links.codes import new_code
from services.links.models import (
    KeyOut,
    ParticipantCreate,
    ParticipantOut,
    ProgramCreate,
    ProgramOut,
    VersionCreate,
)
from shared.contracts import ApiKeyIssued, ParticipantEnrolled, ProgramPublished
from shared.http.auth import (
    new_program_key,
    require_admin,
    require_program_access,
    store_key,
)
from shared.http.idempotency import run_idempotent
from shared.http.problems import Problem
from shared.messaging.outbox import enqueue
from shared.service import Runtime, runtime_of

router = APIRouter(prefix="/v1", tags=["programs"])
SOURCE = "/services/links"


def _program_out(row: Any) -> dict[str, Any]:
    return ProgramOut(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        version=row["version"],
        effective_from=row["effective_from"],
        definition=row["definition"],
    ).model_dump(mode="json")


async def _publish_version(conn: asyncpg.Connection, program_id: UUID) -> dict[str, Any]:
    row = await repo.get_program(conn, program_id)
    assert row is not None
    await enqueue(
        conn,
        ProgramPublished(
            program_id=program_id,
            version=row["version"],
            effective_from=row["effective_from"],
            name=row["name"],
            status=row["status"],
            definition=row["definition"],
        ),
        source=SOURCE,
    )
    return _program_out(row)


@router.post(
    "/programs", status_code=201, response_model=ProgramOut, dependencies=[Depends(require_admin)]
)
async def create_program(
    body: ProgramCreate,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Any:
    rt = runtime_of(request)

    async def effect(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        program_id = uuid.uuid4()
        await repo.insert_program(conn, program_id, body.name)
        await repo.add_version(
            conn,
            program_id,
            body.effective_from or datetime.now(UTC),
            body.definition.model_dump(mode="json"),
        )
        return 201, await _publish_version(conn, program_id)

    return await run_idempotent(
        rt.pool,
        scope="programs",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=effect,
    )


@router.get(
    "/programs/{program_id}",
    response_model=ProgramOut,
    dependencies=[Depends(require_program_access)],
)
async def get_program(program_id: UUID, request: Request) -> Any:
    rt = runtime_of(request)
    row = await repo.get_program(rt.pool, program_id)
    if row is None:
        raise Problem(404, "program-not-found", f"No program {program_id}", field="program_id")
    return _program_out(row)


@router.post(
    "/programs/{program_id}/versions",
    status_code=201,
    response_model=ProgramOut,
    dependencies=[Depends(require_admin)],
)
async def publish_version(program_id: UUID, body: VersionCreate, request: Request) -> Any:
    """A change to a program is a new immutable version, effective now or later."""
    rt = runtime_of(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        if await repo.get_program(conn, program_id) is None:
            raise Problem(404, "program-not-found", f"No program {program_id}", field="program_id")
        await repo.add_version(
            conn,
            program_id,
            body.effective_from or datetime.now(UTC),
            body.definition.model_dump(mode="json"),
        )
        return await _publish_version(conn, program_id)


@router.post(
    "/programs/{program_id}/keys",
    status_code=201,
    response_model=KeyOut,
    dependencies=[Depends(require_admin)],
)
async def create_key(program_id: UUID, request: Request) -> Any:
    """A secret key for server-to-server calls of this program. Shown once."""
    rt = runtime_of(request)
    issued = new_program_key()
    async with rt.pool.acquire() as conn, conn.transaction():
        if await repo.get_program(conn, program_id) is None:
            raise Problem(404, "program-not-found", f"No program {program_id}", field="program_id")
        await store_key(conn, issued.key_id, program_id, issued.key_hash)
        await enqueue(
            conn,
            ApiKeyIssued(
                key_id=issued.key_id,
                program_id=program_id,
                key_hash=issued.key_hash,
                created_at=datetime.now(UTC),
            ),
            source=SOURCE,
        )
    return KeyOut(key_id=issued.key_id, program_id=program_id, secret_key=issued.secret)


def _participant_out(rt: Runtime, row: Any) -> dict[str, Any]:
    base = rt.settings.public_base_url.rstrip("/")  # type: ignore[attr-defined]
    return ParticipantOut(
        id=row["id"],
        program_id=row["program_id"],
        external_user_id=row["external_user_id"],
        code=row["code"],
        link_url=f"{base}/r/{row['code']}",
        locale=row["locale"],
    ).model_dump(mode="json")


@router.post(
    "/programs/{program_id}/participants",
    status_code=201,
    response_model=ParticipantOut,
    dependencies=[Depends(require_program_access)],
)
async def enrol(program_id: UUID, body: ParticipantCreate, request: Request) -> Any:
    """Enrolling the same user twice returns the same participant and code (200)."""
    rt = runtime_of(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        program = await repo.get_program(conn, program_id)
        if program is None:
            raise Problem(404, "program-not-found", f"No program {program_id}", field="program_id")
        if program["status"] != "active":
            raise Problem(409, "program-paused", "The program takes no new enrolments")
        # Serialise enrolments of one user so a concurrent duplicate sees the first one.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))", f"{program_id}:{body.external_user_id}"
        )
        existing = await repo.find_participant(conn, program_id, body.external_user_id)
        if existing is not None:
            return JSONResponse(_participant_out(rt, existing), status_code=200)
        values = {"id": uuid.uuid4(), "program_id": program_id, **body.model_dump()}
        while True:
            values["code"] = new_code()
            if await repo.insert_participant(conn, values):
                break
        row = await repo.get_participant(conn, values["id"])
        out = _participant_out(rt, row)
        await enqueue(
            conn,
            ParticipantEnrolled(
                participant_id=values["id"],
                program_id=program_id,
                external_user_id=body.external_user_id,
                code=values["code"],
                link_url=out["link_url"],
                email=body.email,
                name=body.name,
                locale=body.locale,
                enrolled_at=row["created_at"],
            ),
            source=SOURCE,
        )
    return out


@router.get(
    "/programs/{program_id}/participants/{participant_id}",
    response_model=ParticipantOut,
    dependencies=[Depends(require_program_access)],
)
async def get_participant(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    rt = runtime_of(request)
    row = await repo.get_participant(rt.pool, participant_id)
    if row is None or row["program_id"] != program_id:
        raise Problem(
            404, "participant-not-found", f"No participant {participant_id}", field="participant_id"
        )
    return _participant_out(rt, row)
