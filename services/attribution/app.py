"""Attribution: clicks, referees, signups and conversions."""

from __future__ import annotations

from fastapi import FastAPI

from services.attribution import api, review_api
from services.attribution.consumers import consumer_groups
from services.attribution.settings import AttributionSettings
from shared.service import create_service_app


def create_app(settings: AttributionSettings | None = None) -> FastAPI:
    settings = settings or AttributionSettings()
    return create_service_app(
        settings=settings,
        title="Referral attribution",
        routers=[api.router, review_api.router],
        consumers=consumer_groups(settings),
    )
