"""The in-app feed of a participant."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from shared.http.auth import require_program_access
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["feed"])


class NotificationOut(BaseModel):
    id: UUID
    kind: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


class FeedOut(BaseModel):
    participant_id: UUID
    items: list[NotificationOut]


@router.get(
    "/programs/{program_id}/participants/{participant_id}/notifications",
    response_model=FeedOut,
    dependencies=[Depends(require_program_access)],
)
async def feed(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    rt = runtime_of(request)
    rows = await rt.pool.fetch(
        "SELECT id, kind, title, body, created_at, read_at FROM notifications "
        "WHERE program_id = $1 AND participant_id = $2 ORDER BY created_at DESC LIMIT 100",
        program_id,
        participant_id,
    )
    return FeedOut(participant_id=participant_id, items=[NotificationOut(**dict(r)) for r in rows])


@router.post(
    "/programs/{program_id}/participants/{participant_id}/notifications/{nid}/read",
    response_model=NotificationOut,
    dependencies=[Depends(require_program_access)],
)
async def mark_read(program_id: UUID, participant_id: UUID, nid: UUID, request: Request) -> Any:
    rt = runtime_of(request)
    row = await rt.pool.fetchrow(
        "UPDATE notifications SET read_at = coalesce(read_at, now()) "
        "WHERE id = $1 AND program_id = $2 AND participant_id = $3 "
        "RETURNING id, kind, title, body, created_at, read_at",
        nid,
        program_id,
        participant_id,
    )
    if row is None:
        raise Problem(404, "notification-not-found", f"No notification {nid}", field="nid")
    return NotificationOut(**dict(row))
