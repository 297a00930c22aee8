"""Public QR codes of a participant's link (no key: the code is public anyway). Served by the
gateway role too, next to the redirect they point at."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.links.participants.sharing import qr_png, qr_svg
from services.links.participants.use_cases import qr_target
from shared.http.openapi import problem_responses
from shared.service import runtime_of

router = APIRouter(tags=["public"])

_QR_CACHE = {"Cache-Control": "public, max-age=3600"}


async def _target(request: Request, code: str) -> str:
    rt = runtime_of(request)
    return await qr_target(rt.pool, rt.settings.public_base_url, code)  # type: ignore[attr-defined]


@router.get(
    "/qr/{code}.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, **problem_responses(404)},
    summary="QR code (SVG) of a participant's link",
)
async def qr_code_svg(code: str, request: Request) -> Response:
    return Response(qr_svg(await _target(request, code)), media_type="image/svg+xml",
                    headers=_QR_CACHE)  # fmt: skip


@router.get(
    "/qr/{code}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **problem_responses(404)},
    summary="QR code (PNG) of a participant's link",
)
async def qr_code_png(code: str, request: Request) -> Response:
    return Response(qr_png(await _target(request, code)), media_type="image/png",
                    headers=_QR_CACHE)  # fmt: skip
