"""The ops console (admin key, signed cookie): sign-in, the overview of every program, a
program's page with its charts, a participant's support story, and the CSV exports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from services.links.insights import console, dlq, exports, reports, story
from services.links.insights import story_repository as stories
from services.links.insights.ranges import forgiving_range
from services.links.programs import repository as programs
from services.links.web import charts, console_auth
from services.links.web.console_charts import STAGE_NAMES, program_charts
from services.links.web.i18n import translator as translator_for
from services.links.web.rendering import ENV, csp, html_response, render
from services.links.web.story_timeline import timeline
from shared.service import runtime_of

router = APIRouter(tags=["pages"], include_in_schema=False)

_EN = translator_for("en")
# The console answers even when the broker does not: the DLQ table then says so.
DLQ_TIMEOUT_S = 5.0
_CONSOLE_CSP = csp(None, "'none'")


NONE = "\u2013"  # an en dash where a number is undefined


def _num(value: float) -> str:
    return _EN.number(value)


def _pct(value: float | None) -> str:
    return NONE if value is None else f"{100 * value:.1f}%"


def _fixed(value: float | None, digits: int) -> str:
    return NONE if value is None else f"{value:,.{digits}f}"


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _when_exact(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _console(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    helpers = {"num": _num, "pct": _pct, "fixed": _fixed, "when": _when, "amount": _EN.amount}
    body = render(template, signed_in=True, **helpers, **context)
    return html_response(body, status=status, csp=_CONSOLE_CSP)


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/login?{urlencode({'next': target})}", status_code=303)


@router.get("/console/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = Query(default=None)) -> Response:
    if console_auth.authenticated(request):
        return RedirectResponse(console_auth.safe_next(next), status_code=303)
    body = render(
        "console_login.html", signed_in=False, error=None, next=console_auth.safe_next(next)
    )
    return html_response(body, csp=_CONSOLE_CSP)


@router.post("/console/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await console_auth.read_form(request)
    admin_key = console_auth.admin_key_of(request)
    target = console_auth.safe_next((form or {}).get("next"))
    if form is not None and console_auth.key_matches(form.get("admin_key", ""), admin_key):
        assert admin_key is not None
        response = RedirectResponse(target, status_code=303)
        console_auth.set_session(response, request, admin_key)
        return response
    error = (
        "The console is disabled: the service has no ADMIN_API_KEY."
        if not admin_key
        else "That is not the admin key."
    )
    body = render("console_login.html", signed_in=False, error=error, next=target)
    return html_response(body, status=401, csp=_CONSOLE_CSP)


@router.post("/console/logout")
async def logout() -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    console_auth.clear_session(response)
    return response


@router.get("/console", response_class=HTMLResponse)
async def console_overview(request: Request) -> Response:
    if not console_auth.authenticated(request):
        return _to_login(request)
    rt = runtime_of(request)
    dlq_error = None
    try:
        async with asyncio.timeout(DLQ_TIMEOUT_S):
            sizes = await dlq.dlq_sizes(rt.settings)
    except Exception as exc:  # the console still shows the rest when the broker is down
        sizes, dlq_error = {}, type(exc).__name__
    async with rt.pool.acquire() as conn:
        overview = await console.console_overview(conn, sizes)
    funnels = {
        p.program_id: charts.hbars(
            [(STAGE_NAMES[s.stage], s.count) for s in p.funnel],
            title=f"Funnel of {p.name}",
            width=320,
            label_width=110,
            bar_height=12,
            gap=4,
            fmt=_num,
        )
        for p in overview.programs
    }
    return _console(
        "console_overview.html", overview=overview, funnels=funnels, dlq_error=dlq_error
    )


@router.get("/console/programs/{program_id}", response_class=HTMLResponse)
async def console_program(
    program_id: UUID,
    request: Request,
    since: date | None = Query(default=None),
    until: date | None = Query(default=None),
) -> Response:
    if not console_auth.authenticated(request):
        return _to_login(request)
    rt = runtime_of(request)
    since, until = forgiving_range(since, until)
    async with rt.pool.acquire() as conn:
        program = await programs.get_program(conn, program_id)
        if program is None:
            return _console_not_found(program_id)
        analytics = await reports.program_analytics(conn, program_id, since, until)
        nps = await reports.nps_report(conn, program_id, since, until)
        experiments = await reports.experiment_report(conn, program_id)
    return _console(
        "console_program.html",
        program={"name": program["name"], "status": program["status"] or "scheduled"},
        analytics=analytics,
        nps=nps,
        experiments=experiments,
        charts=program_charts(analytics, nps, experiments),
        stage_names=STAGE_NAMES,
    )


@router.get("/console/programs/{program_id}/find", response_class=HTMLResponse)
async def console_find(
    program_id: UUID, request: Request, q: str = Query(default="", max_length=200)
) -> Response:
    """A participant by id, the company's user id or code: to their story."""
    if not console_auth.authenticated(request):
        return _to_login(request)
    pool = runtime_of(request).pool
    found = await stories.find_participant(pool, program_id, q) if q.strip() else None
    if found is None:
        return _console_not_found(program_id, what=f"participant {q!r}")
    return RedirectResponse(f"/console/programs/{program_id}/participants/{found}", 303)


@router.get("/console/programs/{program_id}/participants/{participant_id}")
async def console_participant(program_id: UUID, participant_id: UUID, request: Request) -> Response:
    """The support story of one participant (the JSON story, rendered)."""
    if not console_auth.authenticated(request):
        return _to_login(request)
    rt = runtime_of(request)
    program = await programs.get_program(rt.pool, program_id)
    if program is None:
        return _console_not_found(program_id)
    admin_key = console_auth.admin_key_of(request)
    found = await story.participant_story(
        rt.pool,
        program_id,
        participant_id,
        story.sources(rt.settings, admin_key),  # type: ignore[arg-type]
    )
    if found is None:
        return _console_not_found(program_id, what=f"participant {participant_id}")
    return _console(
        "console_participant.html",
        program={"id": program_id, "name": program["name"]},
        story=found,
        moments=timeline(found, _EN.amount),
        exact=_when_exact,  # a story's facts are often seconds apart
    )


def _console_not_found(program_id: UUID, what: str = "program") -> HTMLResponse:
    body = (
        "{% extends 'console_base.html' %}{% block body %}<h1>No such {{ what }}</h1>"
        "<p class='muted mono'>{{ program_id }}</p>{% endblock %}"
    )
    html = ENV.from_string(body).render(signed_in=True, program_id=program_id, what=what)
    return html_response(html, status=404, csp=_CONSOLE_CSP)


@router.get("/console/programs/{program_id}/export/{kind}.csv")
async def console_export(program_id: UUID, kind: str, request: Request) -> Response:
    if not console_auth.authenticated(request):
        return _to_login(request)
    if kind not in exports.COLUMNS:
        return _console_not_found(program_id)
    rt = runtime_of(request)
    if await programs.get_program(rt.pool, program_id) is None:
        return _console_not_found(program_id)

    async def rows() -> AsyncIterator[str]:
        # The connection lives as long as the stream, not the handler.
        async with rt.pool.acquire() as conn:
            async for chunk in exports.export_csv(conn, kind, program_id):
                yield chunk

    filename = f"{kind}-{program_id}.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
