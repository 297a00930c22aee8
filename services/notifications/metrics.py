"""Delivery metrics for ops (per channel), and the refresh of the backlog gauges."""

from __future__ import annotations

import asyncpg
from prometheus_client import Counter, Gauge

from services.notifications.repository import deliveries, endpoints

SENT = Counter("notifications_sent_total", "Messages delivered", ["channel"])
FAILED = Counter("notifications_failed_total", "Messages given up on", ["channel"])
RETRIED = Counter("notifications_retried_total", "Failed attempts scheduled again", ["channel"])
SKIPPED = Counter("notifications_skipped_total", "Messages not sent on purpose", ["channel"])
ENDPOINTS_DISABLED = Counter(
    "notifications_webhook_endpoints_disabled_total", "Webhook endpoints disabled for failing"
)
PENDING = Gauge("notifications_pending", "Messages waiting to be sent", ["channel"])
OLDEST_PENDING_AGE = Gauge(
    "notifications_oldest_pending_age_seconds", "Age of the oldest waiting message", ["channel"]
)
ENDPOINTS_DISABLED_NOW = Gauge(
    "notifications_disabled_webhook_endpoints", "Webhook endpoints disabled at the moment"
)


async def update_gauges(pool: asyncpg.Pool) -> None:
    """Backlog per channel and disabled endpoints, for ops (a stuck sender shows here)."""
    pending = await deliveries.pending_by_channel(pool)
    for channel in ("email", "webhook"):
        count, age = pending.get(channel, (0, 0.0))
        PENDING.labels(channel).set(count)
        OLDEST_PENDING_AGE.labels(channel).set(age)
    ENDPOINTS_DISABLED_NOW.set(await endpoints.count_disabled(pool))
