"""How requests reach the redirect: :class:`Gateway`, a raw-ASGI front that answers
``GET``/``HEAD /r/{code}`` itself and passes everything else to FastAPI, and the FastAPI route
that documents the endpoint in OpenAPI (and runs the same code when the app is served
without the front)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from services.links.gateway.redirect import Redirector

router = APIRouter(tags=["redirect"])


class RedirectSlot:
    """Where the gateway finds the redirector (None until the app has started)."""

    redirector: Redirector | None = None


class Gateway:
    """Raw-ASGI front of the FastAPI app: ``GET``/``HEAD /r/{code}`` is answered here, with
    no framework in the way; every other request goes to FastAPI untouched. ``slot`` holds the
    redirector once the app has started (None before: then FastAPI's route answers)."""

    def __init__(self, app: Any, slot: Any) -> None:
        self.app = app
        self.slot = slot

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            redirector = self.slot.redirector
            if (
                redirector is not None
                and path.startswith("/r/")
                and path.find("/", 3) < 0
                and ((method := scope["method"]) == "GET" or method == "HEAD")
            ):
                answer = redirector.hit(scope)
                if answer is None:
                    answer = await redirector.answer_miss(scope)
                await send({"type": "http.response.start", "status": answer[0],
                            "headers": answer[1]})  # fmt: skip
                await send({"type": "http.response.body",
                            "body": b"" if method == "HEAD" else answer[2]})  # fmt: skip
                return
        await self.app(scope, receive, send)


@router.get(
    "/r/{code}",
    status_code=302,
    response_class=Response,
    responses={
        302: {"description": "To the program destination, with the click id appended"},
        404: {"description": "Unknown or disabled code (no fallback URL)"},
        429: {"description": "Too many requests from this address"},
    },
    summary="Follow a referral link",
)
async def follow(code: str, request: Request) -> Response:
    """Served by the raw-ASGI :class:`Gateway` in front of FastAPI; this route runs the same
    code when the app is mounted without it. Query: ``ch`` (share channel) and ``utm_*``."""
    redirector: Redirector | None = request.app.state.slot.redirector
    if redirector is None:
        return Response(status_code=503, headers={"Retry-After": "1"})
    status, headers, body = await redirector.answer(request.scope)
    out = Response(body, status_code=status)
    for name, value in headers:
        if name != b"content-length":
            out.headers[name.decode()] = value.decode()
    return out


router.add_api_route("/r/{code}", follow, methods=["HEAD"], include_in_schema=False)


def install_gateway(app: FastAPI) -> None:
    """Put the raw-ASGI redirect in front of whatever middleware stack the app builds
    (Starlette builds it lazily on the first call through ``build_middleware_stack``), so
    that the app answers redirects fast however it is served. ``python -m services.links``
    also puts one in front of FastAPI itself."""
    build = app.build_middleware_stack
    app.state.slot = RedirectSlot()

    def build_with_gateway() -> Any:
        return Gateway(build(), app.state.slot)

    app.build_middleware_stack = build_with_gateway  # type: ignore[method-assign]
