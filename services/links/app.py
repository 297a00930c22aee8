"""The links gateway: programs, participants, keys, and the public redirect."""

from __future__ import annotations

from fastapi import FastAPI

from services.links import api, redirect
from services.links.clicks import ClickBuffer
from services.links.settings import LinksSettings
from shared.service import Runtime, create_service_app


def create_app(settings: LinksSettings | None = None) -> FastAPI:
    settings = settings or LinksSettings()
    app: FastAPI

    async def on_start(rt: Runtime) -> None:
        clicks = ClickBuffer(
            rt.producer, max_size=settings.click_buffer_size, batch_size=settings.click_batch_size
        )
        app.state.clicks = clicks
        app.state.code_cache = redirect.CodeCache()
        rt.spawn(clicks.run(rt.stop), "click-buffer")

    async def on_stop(rt: Runtime) -> None:
        await app.state.clicks.flush()

    app = create_service_app(
        settings=settings,
        title="Referral links gateway",
        routers=[api.router, redirect.router],
        on_start=on_start,
        on_stop=on_stop,
    )
    return app
