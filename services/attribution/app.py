"""Attribution: clicks, referees, signups and conversions."""

from __future__ import annotations

from fastapi import FastAPI

from services.attribution import api
from services.attribution.consumers import HANDLERS
from services.attribution.settings import AttributionSettings
from shared.service import create_service_app


def create_app(settings: AttributionSettings | None = None) -> FastAPI:
    settings = settings or AttributionSettings()
    return create_service_app(
        settings=settings, title="Referral attribution", routers=[api.router], handlers=HANDLERS
    )
