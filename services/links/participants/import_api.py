"""Import routes: bulk enrolment of existing customers from a CSV or JSON Lines upload
(admin key or the program's key), its progress and its error report."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request

from services.links.participants.bulk_enrolment import PARTICIPANTS
from services.links.participants.enrolment import open_version
from shared.http.auth import require_any_key, require_program_access
from shared.http.idempotency import MAX_KEY_LENGTH
from shared.http.openapi import problem_responses
from shared.imports import api as imports
from shared.imports.models import ImportOut
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
    idempotency_key: str | None = Header(
        default=None, alias="Idempotency-Key", min_length=1, max_length=MAX_KEY_LENGTH
    ),
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


router.include_router(imports.progress_routes(require_any_key))
