"""Program, key and participant management (admin key, or the program's own key), share
events, erasure, and the public QR codes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from services.links import repository as repo
from services.links.codes import CODE_CHARS_RE, new_code
from services.links.experiments import assign_variant
from services.links.models import (
    ErasureOut,
    KeyOut,
    ParticipantCreate,
    ParticipantOut,
    ProgramCreate,
    ProgramOut,
    ShareCreate,
    ShareOut,
    VersionCreate,
    VersionOut,
    VersionPage,
)
from services.links.sharing import DEFAULT_CHANNELS, qr_png, qr_svg, share_url
from shared.contracts import (
    ApiKeyIssued,
    ApiKeyRevoked,
    LinkShared,
    ParticipantEnrolled,
    ParticipantErased,
    ProgramPublished,
)
from shared.contracts.programs import ProgramDefinition
from shared.http.auth import (
    new_program_key,
    require_admin,
    require_program_access,
    revoke_key,
    store_key,
)
from shared.http.idempotency import run_idempotent
from shared.http.problems import Problem
from shared.messaging.outbox import enqueue
from shared.service import Runtime, runtime_of

router = APIRouter(prefix="/v1", tags=["programs"])
public = APIRouter(tags=["public"])
SOURCE = "/services/links"
# Clocks differ a little between the caller and us: "now" may arrive slightly in the past.
_CLOCK_SKEW = timedelta(minutes=5)


def _not_found(program_id: UUID) -> Problem:
    return Problem(404, "program-not-found", f"No program {program_id}", field="program_id")


def _effective_from(value: datetime | None) -> datetime:
    now = datetime.now(UTC)
    if value is None:
        return now
    if value.tzinfo is None:
        raise Problem(
            422, "validation-error", "effective_from needs a time zone", field="effective_from"
        )
    if value < now - _CLOCK_SKEW:
        raise Problem(
            422,
            "effective-from-in-the-past",
            "effective_from must be now or a future time",
            field="effective_from",
        )
    return max(value, now)


def _forget_program(request: Request, program_id: UUID) -> None:
    """This replica forgets at once; the others learn it from ``program.published``."""
    cache = getattr(request.app.state, "cache", None)
    if cache is not None:
        cache.forget_program(str(program_id))


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
        source=SOURCE,
    )
    return ProgramOut(
        id=program_id,
        name=row["name"],
        status=row["status"],
        version=version,
        effective_from=row["effective_from"],
        in_force=row["effective_from"] <= datetime.now(UTC),
        latest_version=version,
        definition=row["definition"],
    ).model_dump(mode="json")


@router.post(
    "/programs", status_code=201, response_model=ProgramOut, dependencies=[Depends(require_admin)]
)
async def create_program(
    body: ProgramCreate,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Any:
    """A program with its first version (in force now, or from ``effective_from``)."""
    rt = runtime_of(request)
    effective_from = _effective_from(body.effective_from)

    async def effect(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        program_id = uuid.uuid4()
        await repo.insert_program(conn, program_id, body.name)
        version = await repo.add_version(
            conn, program_id, effective_from, body.definition.model_dump(mode="json")
        )
        return 201, await _publish(conn, program_id, version)

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
    """The version in force now (or, before the first one takes effect, the first one)."""
    rt = runtime_of(request)
    row = await repo.get_program(rt.pool, program_id)
    if row is None:
        raise _not_found(program_id)
    if row["version"] is None:
        first = await repo.get_version(rt.pool, program_id, 1)
        assert first is not None
        row = {**dict(row), **{k: first[k] for k in ("version", "effective_from", "status")},
               "definition": first["definition"]}  # fmt: skip
    return ProgramOut(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        version=row["version"],
        effective_from=row["effective_from"],
        in_force=row["effective_from"] <= datetime.now(UTC),
        latest_version=row["latest_version"],
        definition=row["definition"],
    ).model_dump(mode="json")


@router.post(
    "/programs/{program_id}/versions",
    status_code=201,
    response_model=ProgramOut,
    dependencies=[Depends(require_admin)],
)
async def publish_version(program_id: UUID, body: VersionCreate, request: Request) -> Any:
    """A change to a program is a new immutable version, effective now or later. A version
    supersedes every older one from its ``effective_from`` on (so a version published now
    also replaces one scheduled earlier for later). It keeps the program's current status."""
    rt = runtime_of(request)
    effective_from = _effective_from(body.effective_from)
    async with rt.pool.acquire() as conn, conn.transaction():
        if await repo.lock_program(conn, program_id) is None:
            raise _not_found(program_id)
        current = await repo.in_force(conn, program_id, datetime.now(UTC))
        status = current["status"] if current is not None else "active"
        version = await repo.add_version(
            conn, program_id, effective_from, body.definition.model_dump(mode="json"), status
        )
        out = await _publish(conn, program_id, version)
    _forget_program(request, program_id)
    return out


@router.get(
    "/programs/{program_id}/versions",
    response_model=VersionPage,
    dependencies=[Depends(require_program_access)],
)
async def list_versions(
    program_id: UUID,
    request: Request,
    cursor: str | None = Query(default=None, max_length=20, pattern=r"^v[0-9]{1,9}$"),
    limit: int = Query(default=50, ge=1, le=200),
) -> Any:
    rt = runtime_of(request)
    if await repo.get_program(rt.pool, program_id) is None:
        raise _not_found(program_id)
    after = int(cursor[1:]) if cursor else 0
    rows = await repo.list_versions(rt.pool, program_id, after, limit + 1)
    items = [VersionOut(**dict(r)) for r in rows[:limit]]
    next_cursor = f"v{items[-1].version}" if len(rows) > limit else None
    return VersionPage(items=items, next_cursor=next_cursor)


async def _set_status(request: Request, program_id: UUID, status: str) -> dict[str, Any]:
    """Pause and resume are versions too: the definition in force now, with a new status."""
    rt = runtime_of(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        if await repo.lock_program(conn, program_id) is None:
            raise _not_found(program_id)
        now = datetime.now(UTC)
        current = await repo.in_force(conn, program_id, now)
        if current is None:
            raise Problem(409, "program-not-in-force", "No version of this program is in force yet")
        if current["status"] == status:
            raise Problem(409, f"program-already-{status}", f"The program is already {status}")
        version = await repo.add_version(conn, program_id, now, current["definition"], status)
        out = await _publish(conn, program_id, version)
    _forget_program(request, program_id)
    return out


@router.post(
    "/programs/{program_id}/pause",
    response_model=ProgramOut,
    dependencies=[Depends(require_admin)],
)
async def pause_program(program_id: UUID, request: Request) -> Any:
    """Redirects go to the fallback URL (or a 404 page) and enrolments are refused."""
    return await _set_status(request, program_id, "paused")


@router.post(
    "/programs/{program_id}/resume",
    response_model=ProgramOut,
    dependencies=[Depends(require_admin)],
)
async def resume_program(program_id: UUID, request: Request) -> Any:
    return await _set_status(request, program_id, "active")


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
            raise _not_found(program_id)
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


@router.delete(
    "/programs/{program_id}/keys/{key_id}",
    status_code=204,
    dependencies=[Depends(require_admin)],
)
async def revoke_program_key(program_id: UUID, key_id: str, request: Request) -> Response:
    """Revoke a key: refused here at once, and in every other service when it applies the
    ``apikey.revoked`` event (normally within milliseconds)."""
    rt = runtime_of(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        if not await revoke_key(conn, key_id, program_id):
            raise Problem(
                404, "key-not-found", f"No active key {key_id} in this program", field="key_id"
            )
        await enqueue(
            conn,
            ApiKeyRevoked(key_id=key_id, program_id=program_id, revoked_at=datetime.now(UTC)),
            source=SOURCE,
        )
    return Response(status_code=204)


def _channels(definition: dict[str, Any]) -> list[str]:
    return list((definition.get("links") or {}).get("channels") or DEFAULT_CHANNELS)


def _participant_out(rt: Runtime, row: Any, definition: dict[str, Any]) -> dict[str, Any]:
    base = rt.settings.public_base_url.rstrip("/")  # type: ignore[attr-defined]
    link = f"{base}/r/{row['code']}"
    erased = row["erased_at"] is not None
    return ParticipantOut(
        id=row["id"],
        program_id=row["program_id"],
        external_user_id=row["external_user_id"],
        code=row["code"],
        link_url=link,
        locale=row["locale"],
        variant=row["variant"],
        share_links={} if erased else {c: share_url(link, c) for c in _channels(definition)},
        qr_svg_url=f"{base}/qr/{row['code']}.svg",
        qr_png_url=f"{base}/qr/{row['code']}.png",
        erased=erased,
        leaderboard_opt_in=row["leaderboard_opt_in"],
        scoreboard_url=None if erased else f"{base}/s/{row['scoreboard_token']}",
    ).model_dump(mode="json")


@dataclass(frozen=True)
class Enrolment:
    participant: dict[str, Any]  # a ParticipantOut
    created: bool


async def enrol_participant(
    conn: asyncpg.Connection,
    rt: Runtime,
    program_id: UUID,
    definition: dict[str, Any],
    body: ParticipantCreate,
) -> Enrolment:
    """Enrol one user under ``definition`` (the version in force; the caller checked that the
    program is active), in the caller's transaction: the participant row and
    ``participant.enrolled`` (notifications sends the welcome) commit together. The same user
    again is the same participant (``created`` False). Used by the API and by NPS promoter
    invitations."""
    policy = ProgramDefinition.model_validate(definition)
    # Serialise enrolments of one user so a concurrent duplicate sees the first one.
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))", f"{program_id}:{body.external_user_id}"
    )
    existing = await repo.find_participant(conn, program_id, body.external_user_id)
    if existing is not None:
        if body.code is not None and body.code.lower() != existing["code"].lower():
            raise Problem(
                409,
                "already-enrolled",
                "This user is enrolled with another code",
                field="code",
            )
        return Enrolment(_participant_out(rt, existing, definition), created=False)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "program_id": program_id,
        **body.model_dump(exclude={"code"}),
        "variant": assign_variant(str(program_id), body.external_user_id, policy.variants),
        "vanity": body.code is not None,
    }
    if body.code is not None:
        if not policy.links.vanity_codes:
            raise Problem(
                422, "vanity-codes-disabled", "This program does not take vanity codes",
                field="code",
            )  # fmt: skip
        values["code"] = body.code
        if not await repo.insert_participant(conn, values):
            raise Problem(409, "code-taken", "This code is already taken", field="code")
    else:
        while True:
            values["code"] = new_code(policy.links.code_length)
            if await repo.insert_participant(conn, values):
                break
    row = await repo.get_participant(conn, values["id"])
    out = _participant_out(rt, row, definition)
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
            variant=values["variant"],
            enrolled_at=row["created_at"],
        ),
        source=SOURCE,
    )
    return Enrolment(out, created=True)


def forget_code(request: Request, code: str) -> None:
    """A "no such code" this replica remembered is wrong once the code is enrolled."""
    cache = getattr(request.app.state, "cache", None)
    if cache is not None:
        cache.forget_code(code)


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
        current = await repo.in_force(conn, program_id, datetime.now(UTC))
        if current is None:
            if await repo.get_program(conn, program_id) is None:
                raise _not_found(program_id)
            raise Problem(409, "program-not-in-force", "No version of this program is in force")
        if current["status"] != "active":
            raise Problem(409, "program-paused", "The program takes no new enrolments")
        enrolment = await enrol_participant(conn, rt, program_id, current["definition"], body)
    if not enrolment.created:
        return JSONResponse(enrolment.participant, status_code=200)
    forget_code(request, enrolment.participant["code"])
    return enrolment.participant


async def _participant(rt: Runtime, program_id: UUID, participant_id: UUID) -> Any:
    row = await repo.get_participant(rt.pool, participant_id)
    if row is None or row["program_id"] != program_id:
        raise Problem(
            404, "participant-not-found", f"No participant {participant_id}", field="participant_id"
        )
    return row


@router.get(
    "/programs/{program_id}/participants/{participant_id}",
    response_model=ParticipantOut,
    dependencies=[Depends(require_program_access)],
)
async def get_participant(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    rt = runtime_of(request)
    row = await _participant(rt, program_id, participant_id)
    current = await repo.in_force(rt.pool, program_id, datetime.now(UTC))
    return _participant_out(rt, row, current["definition"] if current else {})


@router.post(
    "/programs/{program_id}/participants/{participant_id}/shares",
    status_code=201,
    response_model=ShareOut,
    dependencies=[Depends(require_program_access)],
)
async def record_share(
    program_id: UUID, participant_id: UUID, body: ShareCreate, request: Request
) -> Any:
    """The participant shared their link on a channel: published as ``link.shared``."""
    rt = runtime_of(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        row = await _participant(rt, program_id, participant_id)
        if row["erased_at"] is not None:
            raise Problem(
                409, "participant-erased", "This participant was erased", field="participant_id"
            )
        current = await repo.in_force(conn, program_id, datetime.now(UTC))
        channels = _channels(current["definition"] if current else {})
        if body.channel not in channels:
            raise Problem(
                422,
                "unknown-channel",
                f"channel must be one of: {', '.join(channels)}",
                field="channel",
            )
        event = LinkShared(
            share_id=uuid.uuid4(),
            program_id=program_id,
            participant_id=participant_id,
            code=row["code"],
            channel=body.channel,
            shared_at=datetime.now(UTC),
        )
        await enqueue(conn, event, source=SOURCE)
    return ShareOut(
        share_id=event.share_id,
        participant_id=participant_id,
        channel=event.channel,
        shared_at=event.shared_at,
    )


@router.delete(
    "/programs/{program_id}/participants/{participant_id}",
    response_model=ErasureOut,
    dependencies=[Depends(require_admin)],
)
async def erase_participant(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    """Erase a participant's personal data (email, name, external user id). The link stops
    working; ``participant.erased`` tells every other service to do the same."""
    rt = runtime_of(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        row = await _participant(rt, program_id, participant_id)
        if row["erased_at"] is not None:
            return ErasureOut(participant_id=participant_id, erased_at=row["erased_at"])
        erased = await repo.erase_participant(conn, participant_id)
        assert erased is not None
        await enqueue(
            conn,
            ParticipantErased(
                participant_id=participant_id,
                program_id=program_id,
                code=erased["code"],
                erased_at=erased["erased_at"],
            ),
            source=SOURCE,
        )
    cache = getattr(request.app.state, "cache", None)
    if cache is not None:
        cache.forget_participant(str(participant_id))
    return ErasureOut(participant_id=participant_id, erased_at=erased["erased_at"])


async def _qr_target(request: Request, code: str) -> str:
    rt = runtime_of(request)
    if not CODE_CHARS_RE.match(code):
        raise Problem(404, "code-not-found", "No such code", field="code")
    row = await repo.resolve_code(rt.pool, code)
    if row is None or not row["active"]:
        raise Problem(404, "code-not-found", "No such code", field="code")
    base = rt.settings.public_base_url.rstrip("/")  # type: ignore[attr-defined]
    return share_url(f"{base}/r/{row['code']}", "qr")


_QR_CACHE = {"Cache-Control": "public, max-age=3600"}


@public.get(
    "/qr/{code}.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
    summary="QR code (SVG) of a participant's link",
)
async def qr_code_svg(code: str, request: Request) -> Response:
    return Response(qr_svg(await _qr_target(request, code)), media_type="image/svg+xml",
                    headers=_QR_CACHE)  # fmt: skip


@public.get(
    "/qr/{code}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="QR code (PNG) of a participant's link",
)
async def qr_code_png(code: str, request: Request) -> Response:
    return Response(qr_png(await _qr_target(request, code)), media_type="image/png",
                    headers=_QR_CACHE)  # fmt: skip
