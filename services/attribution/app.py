"""Attribution: clicks, referees, signups and conversions."""

from __future__ import annotations

from fastapi import FastAPI

from services.attribution import api, pending, review_api, stripe_api
from services.attribution.consumers import consumer_groups
from services.attribution.settings import AttributionSettings
from shared.service import Runtime, create_service_app


def create_app(settings: AttributionSettings | None = None) -> FastAPI:
    settings = settings or AttributionSettings()

    async def on_start(rt: Runtime) -> None:
        rt.spawn(
            pending.run(rt.pool, rt.stop, interval_s=settings.pending_sweep_interval_s),
            "pending-signups",
        )

    return create_service_app(
        settings=settings,
        title="Referral attribution",
        routers=[api.router, review_api.router, stripe_api.router],
        consumers=consumer_groups(settings),
        on_start=on_start,
    )
