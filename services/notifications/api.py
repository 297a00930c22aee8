"""The in-app feed of a participant, their preferences, and the public unsubscribe link."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict

from services.notifications.unsubscribe import CATEGORIES, read_token
from shared.http.auth import require_program_access
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["feed"])
public = APIRouter(tags=["unsubscribe"])


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


class Preferences(BaseModel):
    """Whether the participant wants email of each category (the default is yes)."""

    model_config = ConfigDict(extra="forbid")

    transactional: bool = True
    marketing: bool = True


class PreferencesPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transactional: bool | None = None
    marketing: bool | None = None


async def _preferences(pool: Any, participant_id: UUID) -> Preferences:
    rows = await pool.fetch(
        "SELECT category, subscribed FROM preferences WHERE participant_id = $1", participant_id
    )
    return Preferences(**{r["category"]: r["subscribed"] for r in rows})


async def _set_preference(
    conn: Any, program_id: UUID, participant_id: UUID, category: str, value: bool, source: str
) -> None:
    await conn.execute(
        "INSERT INTO preferences (participant_id, program_id, category, subscribed, source) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (participant_id, category) DO UPDATE "
        "SET subscribed = EXCLUDED.subscribed, source = EXCLUDED.source, updated_at = now()",
        participant_id,
        program_id,
        category,
        value,
        source,
    )


async def _program_of(pool: Any, participant_id: UUID) -> UUID | None:
    return await pool.fetchval(  # type: ignore[no-any-return]
        "SELECT program_id FROM participants WHERE participant_id = $1", participant_id
    )


@router.get(
    "/programs/{program_id}/participants/{participant_id}/preferences",
    response_model=Preferences,
    dependencies=[Depends(require_program_access)],
)
async def get_preferences(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    rt = runtime_of(request)
    if await _program_of(rt.pool, participant_id) != program_id:
        raise Problem(
            404, "participant-not-found", f"No participant {participant_id}", field="participant_id"
        )
    return await _preferences(rt.pool, participant_id)


@router.patch(
    "/programs/{program_id}/participants/{participant_id}/preferences",
    response_model=Preferences,
    dependencies=[Depends(require_program_access)],
)
async def set_preferences(
    program_id: UUID, participant_id: UUID, body: PreferencesPatch, request: Request
) -> Any:
    rt = runtime_of(request)
    if await _program_of(rt.pool, participant_id) != program_id:
        raise Problem(
            404, "participant-not-found", f"No participant {participant_id}", field="participant_id"
        )
    async with rt.pool.acquire() as conn, conn.transaction():
        for category in CATEGORIES:
            value = getattr(body, category)
            if value is not None:
                await _set_preference(conn, program_id, participant_id, category, value, "api")
    return await _preferences(rt.pool, participant_id)


_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
</head><body><p>{text}</p>{form}</body></html>"""


def _token_or_404(request: Request, token: str) -> tuple[UUID, str]:
    settings = runtime_of(request).settings
    found = read_token(settings.unsubscribe_key(), token)  # type: ignore[attr-defined]
    if found is None:
        raise Problem(404, "unsubscribe-link-invalid", "This unsubscribe link is not valid")
    return found


@public.get("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
    """A GET only shows a confirmation button: mail scanners follow links, and must not
    unsubscribe anyone by doing so (RFC 8058 §3)."""
    _, category = _token_or_404(request, token)
    form = (
        f'<form method="post" action="/unsubscribe/{token}">'
        f'<button type="submit">Unsubscribe from {category} emails</button></form>'
    )
    return HTMLResponse(_PAGE.format(title="Unsubscribe", text="Stop these emails?", form=form))


@public.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    """One-click unsubscribe (``List-Unsubscribe=One-Click`` body, RFC 8058) or the form."""
    participant_id, category = _token_or_404(request, token)
    rt = runtime_of(request)
    program_id = await _program_of(rt.pool, participant_id)
    if program_id is None:
        raise Problem(404, "unsubscribe-link-invalid", "This unsubscribe link is not valid")
    await _set_preference(rt.pool, program_id, participant_id, category, False, "link")
    return HTMLResponse(
        _PAGE.format(title="Unsubscribed", text=f"You will get no more {category} emails.", form="")
    )
