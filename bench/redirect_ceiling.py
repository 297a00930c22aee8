"""The ceiling for the redirect benchmark: a minimal raw-ASGI app that answers
``GET /r/{code}`` with a 302 from a dict, and nothing else. Same server and settings as the
gateway (uvicorn, uvloop, httptools, no access log).

``python bench/redirect_ceiling.py <port> <codes file>``"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import uvicorn

DESTINATION = "https://shop.example.com/welcome?ref_click="
_TAIL = [(b"content-length", b"0")]


def make_app(codes: list[str]) -> Any:
    table = {c: (DESTINATION + c).encode() for c in codes}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        location = table.get(scope["path"][3:])
        if location is None:
            await send({"type": "http.response.start", "status": 404, "headers": _TAIL})
        else:
            await send(
                {
                    "type": "http.response.start",
                    "status": 302,
                    "headers": [(b"location", location), *_TAIL],
                }
            )
        await send({"type": "http.response.body", "body": b""})

    return app


def main() -> None:
    port = int(sys.argv[1])
    codes = Path(sys.argv[2]).read_text().split()
    uvicorn.run(
        make_app(codes),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
