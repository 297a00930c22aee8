"""Notifications: the in-app feed (email, webhooks and templates come with their issue)."""

from __future__ import annotations

from fastapi import FastAPI

from services.notifications import api
from services.notifications.consumers import HANDLERS
from services.notifications.settings import NotificationsSettings
from shared.service import create_service_app


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    return create_service_app(
        settings=settings, title="Referral notifications", routers=[api.router], handlers=HANDLERS
    )
