"""Participant routes: enrol (admin key or the program's key), read, record a share, erase
(admin key)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from services.links.gateway.cache import forget_code, forget_participant
from services.links.participants import use_cases
from services.links.participants.enrolment import enrol as enrol_user
from services.links.participants.models import (
    ErasureOut,
    ParticipantCreate,
    ParticipantOut,
    ShareCreate,
    ShareOut,
)
from shared.http.auth import require_admin, require_program_access
from shared.http.openapi import problem_responses
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["programs"])


def _base_url(request: Request) -> str:
    return runtime_of(request).settings.public_base_url  # type: ignore[attr-defined,no-any-return]


@router.post(
    "/programs/{program_id}/participants",
    status_code=201,
    response_model=ParticipantOut,
    dependencies=[Depends(require_program_access)],
    responses={
        200: {"model": ParticipantOut, "description": "Already enrolled: the same participant"},
        **problem_responses(404, 409),
    },
)
async def enrol(program_id: UUID, body: ParticipantCreate, request: Request) -> Any:
    """Enrolling the same user twice returns the same participant and code (200)."""
    rt = runtime_of(request)
    enrolment = await enrol_user(rt.pool, _base_url(request), program_id, body)
    if not enrolment.created:
        return JSONResponse(enrolment.participant, status_code=200)
    forget_code(request.app.state, enrolment.participant["code"])
    return enrolment.participant


@router.get(
    "/programs/{program_id}/participants/{participant_id}",
    response_model=ParticipantOut,
    dependencies=[Depends(require_program_access)],
    responses=problem_responses(404),
)
async def get_participant(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    return await use_cases.get_participant(
        runtime_of(request).pool, _base_url(request), program_id, participant_id
    )


@router.post(
    "/programs/{program_id}/participants/{participant_id}/shares",
    status_code=201,
    response_model=ShareOut,
    dependencies=[Depends(require_program_access)],
    responses=problem_responses(404, 409),
)
async def record_share(
    program_id: UUID, participant_id: UUID, body: ShareCreate, request: Request
) -> Any:
    """The participant shared their link on a channel: published as ``link.shared``."""
    return await use_cases.record_share(runtime_of(request).pool, program_id, participant_id, body)


@router.delete(
    "/programs/{program_id}/participants/{participant_id}",
    response_model=ErasureOut,
    dependencies=[Depends(require_admin)],
    responses=problem_responses(404),
)
async def erase_participant(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    """Erase a participant's personal data (email, name, external user id). The link stops
    working; ``participant.erased`` tells every other service to do the same."""
    out = await use_cases.erase(runtime_of(request).pool, program_id, participant_id)
    forget_participant(request.app.state, str(participant_id))
    return out
