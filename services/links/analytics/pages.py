"""HTML pages of the links service: the participant scoreboard (public, behind its secret
token, in the participant's language), its embeddable variant, and the ops console (admin
key, signed cookie). Server-rendered Jinja2 with autoescaping; charts are inline SVG; the
only script is the copy button's, allowed by a per-response CSP nonce."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.links import repository
from services.links.analytics import charts, console_auth, dlq, queries
from services.links.analytics.api import DEFAULT_DAYS, MAX_DAYS
from services.links.analytics.i18n import LANGUAGE_NAMES, SUPPORTED, Translator, negotiate
from services.links.analytics.i18n import translator as translator_for
from services.links.analytics.models import (
    ExperimentReport,
    NpsReport,
    ProgramAnalytics,
    Scoreboard,
)
from shared.service import runtime_of

router = APIRouter(tags=["pages"], include_in_schema=False)

TEMPLATES = Path(__file__).parent / "templates"
_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Scoreboard tokens are 32 random bytes, url-safe base64 (43 characters).
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_ORIGIN = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
STAGE_NAMES = {
    "enrolled": "Enrolled",
    "shared": "Shared",
    "clicked": "Clicked (invites)",
    "signed_up": "Signed up",
    "converted": "Converted",
    "rewarded": "Rewarded",
}


def render(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)


# --- headers ---------------------------------------------------------------------------------


def _csp(nonce: str | None, frame_ancestors: str, img_origins: tuple[str, ...] = ()) -> str:
    images = " ".join(("'self'", "data:", *img_origins))
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    # Inline styles: the pages' own <style> and the charts' style attributes (no user CSS).
    return (
        f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; "
        f"script-src {script}; form-action 'self'; base-uri 'none'; "
        f"frame-ancestors {frame_ancestors}"
    )


def _html(
    body: str,
    *,
    status: int = 200,
    csp: str,
    frameable: bool = False,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    response = HTMLResponse(body, status_code=status, headers=headers)
    response.headers["Content-Security-Policy"] = csp
    if not frameable:
        response.headers["X-Frame-Options"] = "DENY"
    # The token in the URL is the secret: never leak it to the sites the share buttons open.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def frame_ancestors(origins: list[str]) -> str:
    """CSP frame-ancestors for the embed: the program's allow-list, 'none' if empty. Only
    well-formed https origins pass, so nothing can inject into the header."""
    allowed = [o.rstrip("/") for o in origins if _ORIGIN.match(o.rstrip("/"))]
    return " ".join(dict.fromkeys(allowed)) if allowed else "'none'"


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else None


# --- scoreboard ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareButton:
    channel: str
    label: str
    href: str


def share_buttons(board: Scoreboard, t: Translator) -> list[ShareButton]:
    """A button per channel of the program, each opening that channel's share screen with
    the link tagged for the channel (``?ch=``). Copy and QR have their own controls."""
    buttons: list[ShareButton] = []
    for share in board.shares:
        url = share.url
        message = t("share_message", program=board.program_name, url=url)
        q_url, q_msg = quote(url, safe=""), quote(message, safe="")
        mail = urlencode({"subject": board.program_name, "body": message}, quote_via=quote)
        href = {
            "email": f"mailto:?{mail}",
            "whatsapp": f"https://wa.me/?text={q_msg}",
            "x": f"https://x.com/intent/post?text={q_msg}",
            "facebook": f"https://www.facebook.com/sharer/sharer.php?u={q_url}",
            "linkedin": f"https://www.linkedin.com/sharing/share-offsite/?url={q_url}",
            "messenger": f"fb-messenger://share/?link={q_url}",
            "telegram": f"https://t.me/share/url?url={q_url}&text={quote(board.program_name)}",
            "sms": f"sms:?&body={q_msg}",
            "other": url,
        }.get(share.channel)
        if href is None:  # copy, qr, or a channel we have no share screen for
            continue
        buttons.append(ShareButton(share.channel, t(f"channel_{share.channel}"), href))
    return buttons


def _milestone_percent(board: Scoreboard) -> int:
    m = board.next_milestone
    if m is None or m.threshold <= 0:
        return 0
    return max(0, min(100, round(100 * m.converted / m.threshold)))


def _participant_context(board: Scoreboard, t: Translator, nonce: str) -> dict[str, Any]:
    return {
        "board": board,
        "t": t,
        "lang": t.language,
        "dir": t.direction,
        "languages": [(code, LANGUAGE_NAMES[code]) for code in SUPPORTED],
        "nonce": nonce,
        "share_buttons": share_buttons(board, t),
        "milestone_percent": _milestone_percent(board),
        "show_reversed": any(r.reversed for r in board.rewards),
    }


def _not_found_page(lang: str | None) -> HTMLResponse:
    t = translator_for(negotiate(lang, None))
    body = render("not_found.html", t=t, lang=t.language, dir=t.direction)
    return _html(body, status=404, csp=_csp(None, "'none'"))


async def _scoreboard(request: Request, token: str) -> Scoreboard | None:
    if not _TOKEN.match(token):
        return None
    rt = runtime_of(request)
    base = getattr(rt.settings, "public_base_url", None)
    async with rt.pool.acquire() as conn:
        return await queries.scoreboard(conn, token, base_url=base)


@router.get("/s/{token}", response_class=HTMLResponse)
async def scoreboard_page(
    token: str, request: Request, lang: str | None = Query(default=None, max_length=35)
) -> Response:
    board = await _scoreboard(request, token)
    if board is None:
        return _not_found_page(lang)
    t = translator_for(negotiate(lang, board.locale))
    nonce = secrets.token_urlsafe(16)
    body = render("scoreboard.html", **_participant_context(board, t, nonce))
    qr_origin = _origin(board.qr_svg_url)
    csp = _csp(nonce, "'none'", (qr_origin,) if qr_origin else ())
    return _html(body, csp=csp, headers={"Content-Language": t.language})


@router.get("/s/{token}/embed", response_class=HTMLResponse)
async def scoreboard_embed(
    token: str, request: Request, lang: str | None = Query(default=None, max_length=35)
) -> Response:
    board = await _scoreboard(request, token)
    if board is None:
        return _not_found_page(lang)
    t = translator_for(negotiate(lang, board.locale))
    nonce = secrets.token_urlsafe(16)
    full = f"/s/{token}" + (f"?lang={t.language}" if lang else "")
    body = render("embed.html", full_url=full, **_participant_context(board, t, nonce))
    csp = _csp(nonce, frame_ancestors(board.embed_origins))
    return _html(body, csp=csp, frameable=True, headers={"Content-Language": t.language})


# --- console ---------------------------------------------------------------------------------

_EN = translator_for("en")
# The console answers even when the broker does not: the DLQ table then says so.
DLQ_TIMEOUT_S = 5.0
_CONSOLE_CSP = _csp(None, "'none'")


NONE = "\u2013"  # an en dash where a number is undefined


def _num(value: float) -> str:
    return _EN.number(value)


def _pct(value: float | None) -> str:
    return NONE if value is None else f"{100 * value:.1f}%"


def _fixed(value: float | None, digits: int) -> str:
    return NONE if value is None else f"{value:,.{digits}f}"


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _console(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    helpers = {"num": _num, "pct": _pct, "fixed": _fixed, "when": _when, "amount": _EN.amount}
    body = render(template, signed_in=True, **helpers, **context)
    return _html(body, status=status, csp=_CONSOLE_CSP)


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
    return _html(body, csp=_CONSOLE_CSP)


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
    return _html(body, status=401, csp=_CONSOLE_CSP)


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
        overview = await queries.console_overview(conn, sizes)
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


def _range(since: date | None, until: date | None) -> tuple[date, date]:
    """The JSON API's range rules, forgiving instead of a 422: a reversed range is turned
    round and a too-long one is cut to its last MAX_DAYS days."""
    until = until or datetime.now(UTC).date()
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        since, until = until, since
    return max(since, until - timedelta(days=MAX_DAYS - 1)), until


# Drawn at about the width of a console card, so that the charts' text is not scaled down.
CARD_CHART_WIDTH = 480
# The stages counted in referrals, with the one each is a share of.
_RATE_OF = {"signed_up": "clicked", "converted": "signed_up", "rewarded": "converted"}


def funnel_notes(analytics: ProgramAnalytics) -> list[str | None]:
    """ "80% of clicked" after the stages whose counts are referrals; enrolled, shared and
    clicked count different things (participants, invited visitors), so no rate there."""
    counts = {s.stage: s.count for s in analytics.funnel}
    notes: list[str | None] = []
    for s in analytics.funnel:
        before = _RATE_OF.get(s.stage)
        if before and counts.get(before):
            notes.append(f"{100 * s.count / counts[before]:.0f}% of {before.replace('_', ' ')}")
        else:
            notes.append(None)
    return notes


def program_charts(
    analytics: ProgramAnalytics, nps: NpsReport, experiments: ExperimentReport
) -> dict[str, Any]:
    days = [p.day for p in analytics.daily]
    daily = analytics.daily
    return {
        "funnel": charts.hbars(
            [(STAGE_NAMES[s.stage], s.count) for s in analytics.funnel],
            title="Funnel",
            width=CARD_CHART_WIDTH,
            label_width=120,
            notes=funnel_notes(analytics),
            fmt=_num,
        ),
        "rejections": charts.hbars(
            sorted(analytics.rejections_by_reason.items(), key=lambda kv: (-kv[1], kv[0])),
            title="Rejections by fraud reason",
            width=CARD_CHART_WIDTH,
            fmt=_num,
            empty_message="no rejections in this range",
        ),
        "reach": charts.lines(
            days,
            {
                "enrolled": [p.enrolled for p in daily],
                "shares": [p.shares for p in daily],
                "clicks": [p.clicks for p in daily],
            },
            title="Enrolments, shares and clicks per day",
            width=CARD_CHART_WIDTH,
            fmt=_num,
        ),
        "outcomes": charts.lines(
            days,
            {
                "signups": [p.signups for p in daily],
                "conversions": [p.conversions for p in daily],
                "rewards issued": [p.rewards_issued for p in daily],
            },
            title="Signups, conversions and rewards issued per day",
            width=CARD_CHART_WIDTH,
            fmt=_num,
        ),
        "nps": charts.lines(
            [p.day for p in nps.daily],
            {"NPS": [p.nps for p in nps.daily]},
            title="NPS per day",
            width=CARD_CHART_WIDTH,
            height=200,
            empty_message="no answers in this range",
        ),
        "intervals": charts.intervals(
            [
                (v.variant, v.participant_conversion_rate, v.ci_low, v.ci_high)
                for v in experiments.variants
            ],
            title="Conversion rate per variant with its 95% interval",
        ),
    }


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
    since, until = _range(since, until)
    async with rt.pool.acquire() as conn:
        program = await repository.get_program(conn, program_id)
        if program is None:
            return _console_not_found(program_id)
        analytics = await queries.program_analytics(conn, program_id, since, until)
        nps = await queries.nps_report(conn, program_id, since, until)
        experiments = await queries.experiment_report(conn, program_id)
    return _console(
        "console_program.html",
        program={"name": program["name"], "status": program["status"] or "scheduled"},
        analytics=analytics,
        nps=nps,
        experiments=experiments,
        charts=program_charts(analytics, nps, experiments),
        stage_names=STAGE_NAMES,
    )


def _console_not_found(program_id: UUID) -> HTMLResponse:
    body = (
        "{% extends 'console_base.html' %}{% block body %}<h1>No such program</h1>"
        "<p class='muted mono'>{{ program_id }}</p>{% endblock %}"
    )
    html = _ENV.from_string(body).render(signed_in=True, program_id=program_id)
    return _html(html, status=404, csp=_CONSOLE_CSP)


@router.get("/console/programs/{program_id}/export/{kind}.csv")
async def console_export(program_id: UUID, kind: str, request: Request) -> Response:
    if not console_auth.authenticated(request):
        return _to_login(request)
    exporters = {"referrals": queries.export_referrals_csv, "rewards": queries.export_rewards_csv}
    export = exporters.get(kind)
    if export is None:
        return _console_not_found(program_id)
    rt = runtime_of(request)
    if await repository.get_program(rt.pool, program_id) is None:
        return _console_not_found(program_id)

    async def rows() -> AsyncIterator[str]:
        # The connection lives as long as the stream, not the handler.
        async with rt.pool.acquire() as conn:
            async for chunk in export(conn, program_id):
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
