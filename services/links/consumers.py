"""The one place that maps topics to handlers in links: the analytics read models, in the
service's own group, and clicks counted a batch at a time in group ``<service>-clicks``.
Only the ``all`` and ``insights`` roles run them (see app.py)."""

from __future__ import annotations

from services.links.insights.projector import (
    HANDLERS,
    ClickCounter,
    ReadModelProjector,
    on_clicked,
)
from services.links.settings import LinksSettings
from shared.contracts import LinkClicked
from shared.messaging.groups import ConsumerGroup


def consumer_groups(settings: LinksSettings) -> list[ConsumerGroup]:
    return [
        ConsumerGroup(HANDLERS, consumer=ReadModelProjector),
        ConsumerGroup(
            {LinkClicked.TOPIC: on_clicked},
            name=f"{settings.service_name}-clicks",
            consumer=ClickCounter,
            min_batch_size=1000,
        ),
    ]
