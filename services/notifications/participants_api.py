"""Routes of what a participant sees and chooses: their in-app feed, their preferences, and the
public unsubscribe link."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from services.notifications import participants
from services.notifications.models import FeedOut, NotificationOut, Preferences, PreferencesPatch
from services.notifications.unsubscribe import read_token
from shared.http.auth import require_program_access
from shared.http.openapi import problem_responses
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["feed"])
public = APIRouter(tags=["unsubscribe"])


def _no_participant(participant_id: UUID) -> Problem:
    return Problem(
        404, "participant-not-found", f"No participant {participant_id}", field="participant_id"
    )


@router.get(
    "/programs/{program_id}/participants/{participant_id}/notifications",
    response_model=FeedOut,
    responses=problem_responses(404),
    dependencies=[Depends(require_program_access)],
)
async def feed(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    items = await participants.latest_feed(runtime_of(request).pool, program_id, participant_id)
    if items is None:
        raise _no_participant(participant_id)
    return FeedOut(participant_id=participant_id, items=[NotificationOut(**i) for i in items])


@router.post(
    "/programs/{program_id}/participants/{participant_id}/notifications/{nid}/read",
    response_model=NotificationOut,
    responses=problem_responses(404),
    dependencies=[Depends(require_program_access)],
)
async def mark_read(program_id: UUID, participant_id: UUID, nid: UUID, request: Request) -> Any:
    item = await participants.mark_read(runtime_of(request).pool, program_id, participant_id, nid)
    if item is None:
        raise Problem(404, "notification-not-found", f"No notification {nid}", field="nid")
    return NotificationOut(**item)


@router.get(
    "/programs/{program_id}/participants/{participant_id}/preferences",
    response_model=Preferences,
    responses=problem_responses(404),
    dependencies=[Depends(require_program_access)],
)
async def get_preferences(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    choices = await participants.preferences(runtime_of(request).pool, program_id, participant_id)
    if choices is None:
        raise _no_participant(participant_id)
    return Preferences(**choices)


@router.patch(
    "/programs/{program_id}/participants/{participant_id}/preferences",
    response_model=Preferences,
    responses=problem_responses(404),
    dependencies=[Depends(require_program_access)],
)
async def set_preferences(
    program_id: UUID, participant_id: UUID, body: PreferencesPatch, request: Request
) -> Any:
    choices = await participants.set_preferences(
        runtime_of(request).pool, program_id, participant_id, body.model_dump()
    )
    if choices is None:
        raise _no_participant(participant_id)
    return Preferences(**choices)


_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
</head><body><p>{text}</p>{form}</body></html>"""


# The unsubscribe page's explicit choice to stop transactional mail too.
_ALSO_TRANSACTIONAL = "transactional"


def _unsubscribe_key(request: Request) -> bytes:
    return runtime_of(request).settings.unsubscribe_key()  # type: ignore[attr-defined,no-any-return]


def _invalid_link() -> Problem:
    return Problem(404, "unsubscribe-link-invalid", "This unsubscribe link is not valid")


@public.get("/unsubscribe/{token}", response_class=HTMLResponse, responses=problem_responses(404))
async def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
    """A GET only shows the choices: mail scanners follow links, and must not unsubscribe
    anyone by doing so (RFC 8058 §3). The first button is what the one-click POST does; the
    second is the explicit choice that also stops the notices about one's own referrals."""
    if read_token(_unsubscribe_key(request), token) is None:
        raise _invalid_link()
    form = (
        f'<form method="post" action="/unsubscribe/{token}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Stop marketing emails</button></form>'
        f'<form method="post" action="/unsubscribe/{token}">'
        f'<input type="hidden" name="{_ALSO_TRANSACTIONAL}" value="stop">'
        '<button type="submit">Also stop emails about my referrals and rewards</button>'
        "</form>"
    )
    return HTMLResponse(_PAGE.format(title="Unsubscribe", text="Stop these emails?", form=form))


@public.post("/unsubscribe/{token}", response_class=HTMLResponse, responses=problem_responses(404))
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    """One-click unsubscribe (``List-Unsubscribe=One-Click`` body, RFC 8058): marketing mail
    stops. Transactional mail stops too only with the page's explicit second choice."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    stopped = await participants.unsubscribe(
        runtime_of(request).pool,
        _unsubscribe_key(request),
        token,
        transactional_too=fields.get(_ALSO_TRANSACTIONAL) == ["stop"],
    )
    if stopped is None:
        raise _invalid_link()
    which = " or ".join(stopped)
    return HTMLResponse(
        _PAGE.format(title="Unsubscribed", text=f"You will get no more {which} emails.", form="")
    )
