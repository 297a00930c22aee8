"""Templates per program, trigger, locale and experiment variant, and a preview that renders
one with sample data."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.notifications import repository as repo
from services.notifications.catalog import TRIGGERS
from services.notifications.messages import SAMPLES, localize
from services.notifications.render import Source, TemplateInvalid, check, render
from shared.http.auth import require_program_access
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["templates"])
_LOCALE = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
_VARIANT = r"^[a-z0-9][a-z0-9_-]{0,31}$"


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=500)
    body: str = Field(min_length=1, max_length=50_000)
    html: str | None = Field(default=None, max_length=200_000)


class TemplateOut(TemplateIn):
    trigger: str
    locale: str
    variant: str | None
    updated_at: datetime


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger: str
    locale: str = Field(default="en", pattern=_LOCALE)
    variant: str | None = Field(default=None, pattern=_VARIANT)
    # A draft to render instead of the stored template.
    subject: str | None = Field(default=None, max_length=500)
    body: str | None = Field(default=None, max_length=50_000)
    html: str | None = Field(default=None, max_length=200_000)
    variables: dict[str, Any] = {}


class PreviewOut(BaseModel):
    subject: str
    text: str
    html: str
    variables: dict[str, Any]


def _trigger(name: str, field: str = "trigger") -> str:
    if name not in TRIGGERS:
        raise Problem(
            422,
            "unknown-trigger",
            f"No trigger {name!r}; known: {', '.join(sorted(TRIGGERS))}",
            field=field,
        )
    return name


def _invalid(exc: TemplateInvalid) -> Problem:
    return Problem(422, "template-invalid", str(exc), field=exc.field)


def _out(row: Any) -> TemplateOut:
    return TemplateOut(**{**dict(row), "variant": row["variant"] or None})


@router.get(
    "/programs/{program_id}/templates",
    response_model=list[TemplateOut],
    dependencies=[Depends(require_program_access)],
)
async def list_templates(program_id: UUID, request: Request) -> Any:
    rows = await runtime_of(request).pool.fetch(
        "SELECT trigger, locale, variant, subject, body, html, updated_at FROM templates "
        "WHERE program_id = $1 ORDER BY trigger, locale, variant",
        program_id,
    )
    return [_out(r) for r in rows]


@router.put(
    "/programs/{program_id}/templates/{trigger}/{locale}",
    response_model=TemplateOut,
    dependencies=[Depends(require_program_access)],
)
async def put_template(
    program_id: UUID,
    trigger: str,
    locale: str,
    body: TemplateIn,
    request: Request,
    variant: str | None = Query(default=None, pattern=_VARIANT),
) -> Any:
    import re

    _trigger(trigger)
    if not re.match(_LOCALE, locale):
        raise Problem(422, "invalid-locale", f"{locale!r} is not a locale tag", field="locale")
    try:
        check(Source(body.subject, body.body, body.html))
    except TemplateInvalid as exc:
        raise _invalid(exc) from exc
    row = await runtime_of(request).pool.fetchrow(
        "INSERT INTO templates (program_id, trigger, locale, variant, subject, body, html) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (program_id, trigger, locale, variant) "
        "DO UPDATE SET subject = EXCLUDED.subject, body = EXCLUDED.body, html = EXCLUDED.html, "
        "updated_at = now() RETURNING trigger, locale, variant, subject, body, html, updated_at",
        program_id,
        trigger,
        locale.replace("_", "-"),
        variant or "",
        body.subject,
        body.body,
        body.html,
    )
    return _out(row)


@router.delete(
    "/programs/{program_id}/templates/{trigger}/{locale}",
    status_code=204,
    dependencies=[Depends(require_program_access)],
)
async def delete_template(
    program_id: UUID,
    trigger: str,
    locale: str,
    request: Request,
    variant: str | None = Query(default=None, pattern=_VARIANT),
) -> Response:
    deleted = await runtime_of(request).pool.fetchval(
        "DELETE FROM templates WHERE program_id = $1 AND trigger = $2 AND locale = $3 "
        "AND variant = $4 RETURNING true",
        program_id,
        trigger,
        locale.replace("_", "-"),
        variant or "",
    )
    if not deleted:
        raise Problem(404, "template-not-found", "No such template", field="locale")
    return Response(status_code=204)


@router.post(
    "/programs/{program_id}/templates/preview",
    response_model=PreviewOut,
    dependencies=[Depends(require_program_access)],
)
async def preview(program_id: UUID, body: PreviewIn, request: Request) -> Any:
    """Render the template a participant of this locale and variant would get (or the draft
    in the body) with sample data, overridable through ``variables``."""
    _trigger(body.trigger)
    if body.subject is not None or body.body is not None:
        stored = await repo.template(
            runtime_of(request).pool, program_id, body.trigger, body.locale, body.variant
        )
        source = Source(
            body.subject if body.subject is not None else stored.subject,
            body.body if body.body is not None else stored.body,
            body.html,
        )
    else:
        source = await repo.template(
            runtime_of(request).pool, program_id, body.trigger, body.locale, body.variant
        )
    values = localize({**SAMPLES[body.trigger], **body.variables}, body.locale)
    settings = runtime_of(request).settings
    unsubscribe = f"{settings.public_url()}/unsubscribe/sample"  # type: ignore[attr-defined]
    try:
        rendered = render(source, values, body.locale, unsubscribe)
    except TemplateInvalid as exc:
        raise _invalid(exc) from exc
    return PreviewOut(
        subject=rendered.subject, text=rendered.text, html=rendered.html, variables=values
    )
