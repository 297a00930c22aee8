"""The trace context a click carries on ``link.clicked``, so a signup naming the click can
link to it. The redirect is answered before any instrumentation runs (no span on that path),
and a span per click would cost the writer far more than encoding the click does, so:

- a click whose request carried a valid W3C ``traceparent`` carries that one (it happened in
  the caller's trace);
- the others carry the context of one PRODUCER span per batch the writer journals, dated from
  the batch's first click.

Spans record no address and no user agent."""

from __future__ import annotations

import re

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from services.links.gateway.click_events import TOPIC
from shared.telemetry import inject_context

SPAN_NAME = f"{TOPIC} publish"
# A proxy until the service installs its provider, then that provider's tracer.
_tracer = trace.get_tracer(__name__)
# Version 00 with non-zero ids: the request header is the client's, so it is checked before
# it is journaled and published.
_TRACEPARENT = re.compile(rb"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def request_traceparent(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's ``traceparent`` if it is well formed, else an empty string."""
    for name, value in headers:
        if name == b"traceparent":
            value = value.strip()
            return value.decode() if _TRACEPARENT.fullmatch(value) else ""
    return ""


def batch_traceparent(count: int, first_click_ns: int) -> str:
    """Start and end the span of a batch of ``count`` clicks; its ``traceparent`` (empty
    when tracing is off)."""
    span = _tracer.start_span(
        SPAN_NAME,
        context=Context(),  # a trace of its own, not the writer task's context
        kind=SpanKind.PRODUCER,
        start_time=first_click_ns,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "publish",
            "messaging.destination.name": TOPIC,
            "messaging.batch.message_count": count,
        },
    )
    span.end()
    return inject_context(trace.set_span_in_context(span)).get("traceparent", "")
