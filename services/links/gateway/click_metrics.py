"""The click capture's Prometheus metrics (see ``clicks.py``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CLICKS_CAPTURED = Counter("clicks_captured_total", "Clicks handed to the click buffer")
CLICKS_BUFFERED = Gauge("clicks_buffered", "Clicks captured but not yet acknowledged by the broker")
CLICKS_PUBLISHED = Counter("clicks_published_total", "Clicks acknowledged on link.clicked")
CLICKS_DROPPED = Counter("clicks_dropped_total", "Clicks dropped because the buffer was full")
CLICKS_SPILLED = Counter("clicks_spilled_total", "Clicks written to the spill file in an outage")
CLICKS_REPLAYED = Counter("clicks_replayed_total", "Clicks published from the spill file")
CLICKS_SEND_FAILURES = Counter("clicks_send_failures_total", "Failed click batch sends")
CLICKS_SPILL_BYTES = Gauge("clicks_spill_bytes", "Bytes of click journal not yet acknowledged")
BROKER_OUTAGE = Gauge("clicks_broker_outage", "1 while clicks go to the spill file only")
