"""The trace of a click. The redirect is answered before any instrumentation runs (no span on
that path), so the click writer starts one PRODUCER span per ``link.clicked`` message, dated
when the click was answered and parented by the request's own ``traceparent`` if it had one.
Its context travels with the message (and in the journal), so a signup naming the click can
link to it."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from services.links.gateway.click_events import TOPIC
from shared.telemetry import extract_context, inject_context

SPAN_NAME = "link.clicked publish"
# A proxy until the service installs its provider, then that provider's tracer.
_tracer = trace.get_tracer(__name__)
_TRACE_HEADERS = (b"traceparent", b"tracestate")


def _request_context(headers: list[tuple[bytes, bytes]]) -> Context:
    carrier: dict[str, str] = {}
    for name, value in headers:
        if name in _TRACE_HEADERS:
            carrier[name.decode()] = value.decode("latin-1")
    # Without a traceparent the span starts a trace of its own (not the writer task's context).
    return extract_context(carrier) if carrier else Context()


def click_trace(
    click_id: str, code: str, clicked_at_ns: int, headers: list[tuple[bytes, bytes]]
) -> tuple[str, str]:
    """(traceparent, tracestate) of the click's span; empty strings when tracing is off.
    Only the message id and the code are recorded: no address, no user agent."""
    span = _tracer.start_span(
        SPAN_NAME,
        context=_request_context(headers),
        kind=SpanKind.PRODUCER,
        start_time=clicked_at_ns,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "publish",
            "messaging.destination.name": TOPIC,
            "messaging.message.id": click_id,
            "link.code": code,
        },
    )
    span.end()
    carrier = inject_context(trace.set_span_in_context(span))
    return carrier.get("traceparent", ""), carrier.get("tracestate", "")
