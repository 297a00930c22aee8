"""Routes of templates per program, trigger, locale and experiment variant, and a preview that
renders one with sample data."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from services.notifications import templates
from services.notifications.models import (
    LOCALE,
    TRIGGER,
    VARIANT,
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateOut,
)
from services.notifications.render import Source, TemplateInvalid
from shared.http.auth import require_program_access
from shared.http.openapi import problem_responses
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["templates"])


def _invalid(exc: TemplateInvalid) -> Problem:
    return Problem(422, "template-invalid", str(exc), field=exc.field)


def _out(row: dict[str, Any]) -> TemplateOut:
    return TemplateOut(**{**row, "variant": row["variant"] or None})


@router.get(
    "/programs/{program_id}/templates",
    response_model=list[TemplateOut],
    dependencies=[Depends(require_program_access)],
)
async def list_templates(program_id: UUID, request: Request) -> Any:
    return [_out(r) for r in await templates.list_templates(runtime_of(request).pool, program_id)]


@router.put(
    "/programs/{program_id}/templates/{trigger}/{locale}",
    response_model=TemplateOut,
    dependencies=[Depends(require_program_access)],
)
async def put_template(
    program_id: UUID,
    trigger: Annotated[str, Path(pattern=TRIGGER)],
    locale: Annotated[str, Path(pattern=LOCALE)],
    body: TemplateIn,
    request: Request,
    variant: str | None = Query(default=None, pattern=VARIANT),
) -> Any:
    try:
        row = await templates.put_template(
            runtime_of(request).pool,
            program_id,
            trigger,
            locale,
            variant,
            Source(body.subject, body.body, body.html),
        )
    except TemplateInvalid as exc:
        raise _invalid(exc) from exc
    return _out(row)


@router.delete(
    "/programs/{program_id}/templates/{trigger}/{locale}",
    status_code=204,
    responses=problem_responses(404),
    dependencies=[Depends(require_program_access)],
)
async def delete_template(
    program_id: UUID,
    trigger: Annotated[str, Path(pattern=TRIGGER)],
    locale: Annotated[str, Path(pattern=LOCALE)],
    request: Request,
    variant: str | None = Query(default=None, pattern=VARIANT),
) -> Response:
    deleted = await templates.delete_template(
        runtime_of(request).pool, program_id, trigger, locale, variant
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
    rt = runtime_of(request)
    try:
        rendered, values = await templates.preview(
            rt.pool,
            program_id,
            trigger=body.trigger,
            locale=body.locale,
            variant=body.variant,
            subject=body.subject,
            body=body.body,
            html=body.html,
            variables=body.variables,
            unsubscribe_url=f"{rt.settings.public_url()}/unsubscribe/sample",  # type: ignore[attr-defined]
        )
    except TemplateInvalid as exc:
        raise _invalid(exc) from exc
    return PreviewOut(
        subject=rendered.subject, text=rendered.text, html=rendered.html, variables=values
    )
