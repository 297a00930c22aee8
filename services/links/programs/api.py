"""Program and key routes (admin key, or the program's own key for reads)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from services.links.gateway.cache import forget_program
from services.links.programs import use_cases
from services.links.programs.models import (
    KeyOut,
    ProgramCreate,
    ProgramOut,
    VersionCreate,
    VersionPage,
)
from shared.http.auth import require_admin, require_program_access
from shared.http.idempotency import MAX_KEY_LENGTH
from shared.http.openapi import problem_responses
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["programs"])


@router.post(
    "/programs",
    status_code=201,
    response_model=ProgramOut,
    dependencies=[Depends(require_admin)],
)
async def create_program(
    body: ProgramCreate,
    request: Request,
    idempotency_key: str | None = Header(
        default=None, alias="Idempotency-Key", min_length=1, max_length=MAX_KEY_LENGTH
    ),
) -> Any:
    """A program with its first version (in force now, or from ``effective_from``)."""
    return await use_cases.create_program(runtime_of(request).pool, body, idempotency_key)


@router.get(
    "/programs/{program_id}",
    response_model=ProgramOut,
    dependencies=[Depends(require_program_access)],
    responses=problem_responses(404),
)
async def get_program(program_id: UUID, request: Request) -> Any:
    """The version in force now (or, before the first one takes effect, the first one)."""
    return await use_cases.get_program(runtime_of(request).pool, program_id)


@router.post(
    "/programs/{program_id}/versions",
    status_code=201,
    response_model=ProgramOut,
    dependencies=[Depends(require_admin)],
    responses=problem_responses(404),
)
async def publish_version(program_id: UUID, body: VersionCreate, request: Request) -> Any:
    """A change to a program is a new immutable version, effective now or later. A version
    supersedes every older one from its ``effective_from`` on (so a version published now
    also replaces one scheduled earlier for later). It keeps the program's current status."""
    out = await use_cases.publish_version(runtime_of(request).pool, program_id, body)
    forget_program(request.app.state, str(program_id))
    return out


@router.get(
    "/programs/{program_id}/versions",
    response_model=VersionPage,
    dependencies=[Depends(require_program_access)],
    responses=problem_responses(404),
)
async def list_versions(
    program_id: UUID,
    request: Request,
    cursor: str | None = Query(default=None, max_length=20, pattern=r"^v[0-9]{1,9}$"),
    limit: int = Query(default=50, ge=1, le=200),
) -> Any:
    return await use_cases.list_versions(runtime_of(request).pool, program_id, cursor, limit)


async def _set_status(request: Request, program_id: UUID, status: str) -> dict[str, Any]:
    out = await use_cases.set_status(runtime_of(request).pool, program_id, status)
    forget_program(request.app.state, str(program_id))
    return out


@router.post(
    "/programs/{program_id}/pause",
    response_model=ProgramOut,
    dependencies=[Depends(require_admin)],
    responses=problem_responses(404, 409),
)
async def pause_program(program_id: UUID, request: Request) -> Any:
    """Redirects go to the fallback URL (or a 404 page) and enrolments are refused."""
    return await _set_status(request, program_id, "paused")


@router.post(
    "/programs/{program_id}/resume",
    response_model=ProgramOut,
    dependencies=[Depends(require_admin)],
    responses=problem_responses(404, 409),
)
async def resume_program(program_id: UUID, request: Request) -> Any:
    return await _set_status(request, program_id, "active")


@router.post(
    "/programs/{program_id}/keys",
    status_code=201,
    response_model=KeyOut,
    dependencies=[Depends(require_admin)],
    responses=problem_responses(404),
)
async def create_key(program_id: UUID, request: Request) -> Any:
    """A secret key for server-to-server calls of this program. Shown once."""
    return await use_cases.issue_key(runtime_of(request).pool, program_id)


@router.delete(
    "/programs/{program_id}/keys/{key_id}",
    status_code=204,
    dependencies=[Depends(require_admin)],
    responses=problem_responses(404),
)
async def revoke_program_key(program_id: UUID, key_id: str, request: Request) -> Response:
    """Revoke a key: refused here at once, and in every other service when it applies the
    ``apikey.revoked`` event (normally within milliseconds)."""
    await use_cases.revoke_program_key(runtime_of(request).pool, program_id, key_id)
    return Response(status_code=204)
