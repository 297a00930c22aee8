"""Prometheus metrics of the rewards service."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REWARDS_CREATED = Counter(
    "rewards_created_total", "Rewards recorded, by initial status", ["status"]
)
REWARDS_ISSUED = Counter(
    "rewards_issued_total", "Rewards that reached the participant", ["channel"]
)
REWARDS_FAILED = Counter("rewards_failed_total", "Rewards whose fulfilment gave up", ["reason"])
REWARDS_REVERSED = Counter("rewards_reversed_total", "Rewards cancelled or clawed back", ["kind"])
COUPON_POOL_EMPTY = Counter(
    "rewards_coupon_pool_empty_total",
    "Rewards that found their program's coupon pool empty",
    ["program_id"],
)
WEBHOOK_ATTEMPTS = Counter(
    "rewards_webhook_attempts_total", "Webhook fulfilment calls, by outcome", ["outcome"]
)
CONVERSION_TO_ISSUED = Histogram(
    "rewards_conversion_to_issued_seconds",
    "Time from the conversion to the reward reaching the participant",
    # Fine below a second (the pipeline's target is p99 <= 500 ms), coarse for holds.
    buckets=(
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1,
        2.5,
        5,
        30,
        300,
        3600,
        86_400,
        7 * 86_400,
        60 * 86_400,
    ),
)
