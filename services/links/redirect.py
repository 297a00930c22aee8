"""``GET``/``HEAD /r/{code}``: answer at once, capture the click off the request path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.links import repository as repo
from services.links.clicks import ClickBuffer
from shared.contracts import LinkClicked
from shared.messaging.outbox import envelope_for
from shared.service import runtime_of

router = APIRouter(tags=["redirect"])
SOURCE = "/services/links"
_NOT_FOUND = HTMLResponse(
    "<!doctype html><title>Not found</title><h1>Link not found</h1>", status_code=404
)


def with_params(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class CodeCache:
    """code -> what the redirect needs. Filled on a miss by one indexed query."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}

    async def get(self, pool: Any, code: str) -> dict[str, Any] | None:
        entry = self._entries.get(code)
        if entry is None:
            entry = await repo.resolve_code(pool, code)
            if entry is not None:
                self._entries[code] = entry
        return entry


@router.get("/r/{code}", status_code=302, response_class=RedirectResponse)
@router.head("/r/{code}", include_in_schema=False)
async def follow(code: str, request: Request) -> Response:
    rt = runtime_of(request)
    cache: CodeCache = request.app.state.code_cache
    clicks: ClickBuffer = request.app.state.clicks
    entry = await cache.get(rt.pool, code)
    if entry is None or entry["definition"] is None:
        return _NOT_FOUND
    definition = entry["definition"]
    if entry["status"] != "active":
        fallback = definition.get("fallback_url")
        return RedirectResponse(fallback, status_code=302) if fallback else _NOT_FOUND
    click_id = uuid.uuid4()
    event = LinkClicked(
        click_id=click_id,
        code=code,
        program_id=entry["program_id"],
        participant_id=entry["participant_id"],
        clicked_at=datetime.now(UTC),
        attributable=request.method == "GET",
    )
    clicks.offer(event, envelope_for(event, SOURCE))
    location = with_params(
        definition["destination_url"],
        {definition.get("click_id_param", "ref_click"): str(click_id)},
    )
    return RedirectResponse(location, status_code=302)
