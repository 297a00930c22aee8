"""Notifications: the in-app feed, email over SMTP, Standard Webhooks, templates, preferences,
reminders and the delivery log. Consumers record intended messages; the sender and the
reminder scheduler run as background tasks of every replica (rows claimed with SKIP LOCKED)."""

from __future__ import annotations

from fastapi import FastAPI

from services.notifications import (
    deliveries_api,
    participants_api,
    reminders,
    templates_api,
    webhooks_api,
)
from services.notifications.consumers import consumer_groups
from services.notifications.context import Context
from services.notifications.delivery import Sender
from services.notifications.settings import NotificationsSettings
from shared.service import Runtime, create_service_app


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    # One per app: the consumers and the scheduler share its cache of definitions.
    context = Context(settings)

    async def on_start(rt: Runtime) -> None:
        rt.spawn(Sender(rt.pool, settings).run(rt.stop), "notifications-sender")
        rt.spawn(reminders.run(rt.pool, context, rt.stop), "reminder-scheduler")

    return create_service_app(
        settings=settings,
        title="Referral notifications",
        routers=[
            participants_api.router,
            participants_api.public,
            templates_api.router,
            webhooks_api.router,
            deliveries_api.router,
        ],
        consumers=consumer_groups(settings, context),
        on_start=on_start,
    )
