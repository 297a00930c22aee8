"""Exported spans carry no client IP and no user agent, whatever set them and when."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.telemetry import exporting

CLIENT = {
    "net.peer.ip": "203.0.113.9",
    "net.peer.port": 51000,
    "client.address": "2001:db8::9",
    "client.port": 51000,
    "http.client_ip": "203.0.113.9",
    "http.user_agent": "Mozilla/5.0 (Private Phone)",
    "user_agent.original": "Mozilla/5.0 (Private Phone)",
    "network.peer.address": "203.0.113.9",
    "http.request.header.x_forwarded_for": ("203.0.113.9",),
    "http.request.header.user-agent": ("Mozilla/5.0 (Private Phone)",),
}
KEPT = {"http.route": "/s/{token}", "http.status_code": 200, "http.request.header.accept": ("*/*",)}


def _provider() -> tuple[TracerProvider, InMemorySpanExporter, InMemorySpanExporter]:
    provider = TracerProvider()
    raw, private = InMemorySpanExporter(), InMemorySpanExporter()
    provider.add_span_processor(exporting(private, batch=False))
    provider.add_span_processor(SimpleSpanProcessor(raw))
    return provider, raw, private


def test_client_data_set_at_start_and_later_is_not_exported() -> None:
    provider, raw, private = _provider()
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        "GET /s/{token}", kind=trace.SpanKind.SERVER, attributes={**CLIENT, **KEPT}
    ) as span:
        span.set_attribute("user_agent.original", "Mozilla/5.0 (set again)")
        span.set_attribute("client.address", "198.51.100.1")
    [exported] = private.get_finished_spans()
    assert dict(exported.attributes or {}) == KEPT
    # The span itself (and any other processor) still had them: the filter is what removed them.
    [recorded] = raw.get_finished_spans()
    assert recorded.attributes is not None and recorded.attributes["net.peer.ip"] == "203.0.113.9"
    assert (exported.context, exported.parent, exported.name, exported.kind) == (
        recorded.context,
        recorded.parent,
        recorded.name,
        recorded.kind,
    )
    assert (exported.start_time, exported.end_time) == (recorded.start_time, recorded.end_time)


def test_on_client_spans_the_server_peer_is_kept() -> None:
    provider, _, private = _provider()
    outgoing = {"net.peer.name": "db.internal", "net.peer.port": 5432, "db.system": "postgresql"}
    with provider.get_tracer("test").start_as_current_span(
        "SELECT", kind=trace.SpanKind.CLIENT, attributes={**outgoing, "user_agent.original": "x"}
    ):
        pass
    [exported] = private.get_finished_spans()
    assert dict(exported.attributes or {}) == outgoing


def test_spans_without_client_data_are_exported_as_they_are() -> None:
    provider, raw, private = _provider()
    with provider.get_tracer("test").start_as_current_span("work", attributes=KEPT):
        pass
    assert private.get_finished_spans()[0] is raw.get_finished_spans()[0]
