"""The browser snippet: ``GET /snippet/v1/referral.js`` (a small script a company's landing
page loads to keep the referral from the click to its signup form) and
``GET /snippet/v1/integrity`` (its Subresource Integrity hash).

A version's file never changes once published, since pages pin its SRI hash: a change ships as
a new version path. So it is cached for a year (``immutable``), with an ETag for revalidation.
It is loaded cross-origin with ``integrity`` and ``crossorigin="anonymous"``, which needs CORS.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

router = APIRouter(tags=["snippet"])

_STATIC = Path(__file__).parent / "static"
SNIPPET_PATH = "/snippet/v1/referral.js"


@dataclass(frozen=True)
class Snippet:
    body: bytes
    integrity: str  # "sha384-<base64>", as a <script integrity> attribute takes it
    etag: str


@cache
def snippet_v1() -> Snippet:
    body = (_STATIC / "referral-v1.js").read_bytes()
    digest = hashlib.sha384(body).digest()
    integrity = "sha384-" + base64.b64encode(digest).decode()
    return Snippet(body=body, integrity=integrity, etag=f'"{digest[:16].hex()}"')


def _headers(snippet: Snippet) -> dict[str, str]:
    return {
        "Cache-Control": "public, max-age=31536000, immutable",
        "ETag": snippet.etag,
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


@router.get(
    SNIPPET_PATH,
    response_class=Response,
    responses={
        200: {"content": {"text/javascript": {}}, "description": "The snippet (version 1)"},
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
    },
    summary="The browser snippet, version 1",
)
async def referral_js(request: Request) -> Response:
    """Reads ``ref_click`` and a typed code from the landing page's URL, keeps them in a
    first-party cookie and fills them into signup forms: see the links README, "Browser
    snippet"."""
    snippet = snippet_v1()
    headers = _headers(snippet)
    if _matches(request.headers.get("if-none-match"), snippet.etag):
        return Response(status_code=304, headers=headers)
    return Response(snippet.body, media_type="text/javascript; charset=utf-8", headers=headers)


class SnippetIntegrity(BaseModel):
    path: str = Field(description="The snippet's path on this gateway")
    integrity: str = Field(description="The value of the script tag's integrity attribute")
    bytes: int = Field(description="Size of the file")


@router.get("/snippet/v1/integrity", summary="The snippet's Subresource Integrity hash")
async def integrity() -> SnippetIntegrity:
    snippet = snippet_v1()
    return SnippetIntegrity(path=SNIPPET_PATH, integrity=snippet.integrity, bytes=len(snippet.body))
