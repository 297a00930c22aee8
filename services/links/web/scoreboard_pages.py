"""The participant's scoreboard page (public, behind its secret token, in the participant's
language) and its embeddable variant. The only script is the copy button's, allowed by a
per-response CSP nonce."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.links.insights import scoreboards
from services.links.insights.models import Scoreboard
from services.links.web.i18n import LANGUAGE_NAMES, SUPPORTED, Translator, negotiate
from services.links.web.i18n import translator as translator_for
from services.links.web.rendering import TOKEN, csp, frame_ancestors, html_response, origin, render
from shared.service import runtime_of

router = APIRouter(tags=["pages"], include_in_schema=False)


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
    return html_response(body, status=404, csp=csp(None, "'none'"))


async def _scoreboard(request: Request, token: str) -> Scoreboard | None:
    if not TOKEN.match(token):
        return None
    rt = runtime_of(request)
    base = getattr(rt.settings, "public_base_url", None)
    async with rt.pool.acquire() as conn:
        return await scoreboards.scoreboard(conn, token, base_url=base)


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
    qr_origin = origin(board.qr_svg_url)
    policy = csp(nonce, "'none'", (qr_origin,) if qr_origin else ())
    return html_response(body, csp=policy, headers={"Content-Language": t.language})


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
    policy = csp(nonce, frame_ancestors(board.embed_origins))
    return html_response(body, csp=policy, frameable=True, headers={"Content-Language": t.language})
