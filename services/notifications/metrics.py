"""Delivery metrics for ops (per channel)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
