"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet sent")
OUTBOX_OLDEST_AGE = Gauge("outbox_oldest_unsent_age_seconds", "Age of the oldest unsent row")
OUTBOX_SENT = Counter("outbox_sent_total", "Events relayed to the broker", ["topic"])
EVENTS_CONSUMED = Counter(
    "events_consumed_total", "Events handled by a consumer", ["consumer", "topic", "result"]
)
DLQ_SENT = Counter(
    "dlq_messages_total", "Messages sent to a dead-letter topic", ["consumer", "topic"]
)
CONSUMER_LAG = Gauge(
    "consumer_lag", "Messages behind the partition end", ["consumer", "topic", "partition"]
)
CONSUMER_RESTARTS = Counter(
    "consumer_restarts_total",
    "Kafka consumers rebuilt by their supervisor (broker, error, cancelled, stalled)",
    ["consumer", "reason"],
)
HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("http_request_duration_seconds", "HTTP latency", ["method", "route"])
KEY_CHECKS = Counter(
    "key_checks_total",
    "Program keys asked of links (active, refused, throttled, unreachable, failed)",
    ["outcome"],
)
