"""Import routes: bulk enrolment of existing customers from a CSV or JSON Lines upload
(admin key or the program's key), its progress and its error report."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request

from services.links.participants.bulk_enrolment import PARTICIPANTS
from services.links.participants.enrolment import open_version
from shared.http.auth import require_any_key, require_program_access
from shared.http.openapi import problem_responses
from shared.imports import api as imports
from shared.imports.models import ImportOut, RowErrorPage
from shared.imports.upload import format_of, receive, replay
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["imports"])


@router.post(
    "/programs/{program_id}/imports/participants",
    status_code=202,
    response_model=ImportOut,
    dependencies=[Depends(require_program_access)],
    responses={**imports.ACCEPTED, **problem_responses(400, 404, 409, 413, 415, 422)},
    openapi_extra=imports.UPLOAD_BODY,
)
async def import_participants(
    program_id: UUID,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Any:
    """Enrol existing customers in bulk: CSV with a header row (`external_user_id` required;
    `email`, `name`, `locale`, `code`, `leaderboard_opt_in` optional; other columns ignored)
    or JSON Lines with those fields. The body is streamed and spooled; rows are enrolled in
    the background (202, `Location: /v1/imports/{id}`). A user already enrolled is counted
    `existing`, so uploading a file again enrols nobody twice; a bad row is reported
    (`GET /v1/imports/{id}/errors`) and does not stop the import."""
    fmt = format_of(request.headers.get("content-type"))
    pool = runtime_of(request).pool
    if (job := await replay(pool, program_id, PARTICIPANTS.name, idempotency_key)) is not None:
        return imports.accepted(job, replayed=True)
    await open_version(pool, program_id)
    job = await receive(pool, PARTICIPANTS, program_id, fmt, request.stream(), idempotency_key)
    request.app.state.import_runner.wake()
    return imports.accepted(job, replayed=False)


@router.get("/imports/{import_id}", response_model=ImportOut, responses=problem_responses(404))
async def get_import(
    import_id: UUID, request: Request, program_id: UUID | None = Depends(require_any_key)
) -> Any:
    """An import's status and progress (admin key, or the key of the import's program)."""
    pool = runtime_of(request).pool
    return imports.import_out(await imports.job_of_program(pool, import_id, program_id))


@router.get(
    "/imports/{import_id}/errors",
    response_model=RowErrorPage,
    responses={
        **problem_responses(404),
        200: {"content": {"text/csv": {}}, "description": "`?format=csv`: every error"},
    },
)
async def import_errors(
    import_id: UUID,
    request: Request,
    program_id: UUID | None = Depends(require_any_key),
    after: str | None = Query(default=None, max_length=40, description="A page's next_after"),
    limit: int = Query(default=100, ge=1, le=imports.ERRORS_PAGE_MAX),
    format: str = Query(default="json", pattern="^(json|csv)$"),
) -> Any:
    """The rows refused, in row order (a CSV header is row 1): `row`, `field` (null when the
    row as a whole was unreadable) and `message`; `?format=csv` streams them all as CSV."""
    pool = runtime_of(request).pool
    await imports.job_of_program(pool, import_id, program_id)
    if format == "csv":
        return imports.errors_csv(pool, import_id)
    return await imports.errors_page(pool, import_id, after, limit)
