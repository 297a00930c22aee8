"""Database calls outside any trace (background polls) are not recorded; everything else is,
as the inner sampler decides."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.telemetry import WithoutOrphanQueries

QUERY = {"db.system": "postgresql", "db.statement": "SELECT 1"}


def _tracer(
    inner: sampling.Sampler = sampling.ALWAYS_ON,
) -> tuple[trace.Tracer, InMemorySpanExporter]:
    provider = TracerProvider(sampler=WithoutOrphanQueries(inner))
    exported = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return provider.get_tracer("test"), exported


def test_a_query_outside_any_trace_is_dropped() -> None:
    tracer, exported = _tracer()
    with tracer.start_as_current_span("SELECT", kind=trace.SpanKind.CLIENT, attributes=QUERY):
        pass
    # New conventions name the system differently; the same rule applies.
    with tracer.start_as_current_span(
        "BEGIN;", kind=trace.SpanKind.CLIENT, attributes={"db.system.name": "postgresql"}
    ):
        pass
    assert exported.get_finished_spans() == ()


def test_a_query_inside_a_request_is_kept_with_its_parent() -> None:
    tracer, exported = _tracer()
    with tracer.start_as_current_span("POST /v1/signups", kind=trace.SpanKind.SERVER):
        with tracer.start_as_current_span("INSERT", kind=trace.SpanKind.CLIENT, attributes=QUERY):
            pass
    names = [s.name for s in exported.get_finished_spans()]
    assert names == ["INSERT", "POST /v1/signups"]


def test_other_root_spans_are_kept_and_the_inner_sampler_still_decides() -> None:
    tracer, exported = _tracer()
    with tracer.start_as_current_span("reward.issued publish", kind=trace.SpanKind.PRODUCER):
        pass
    with tracer.start_as_current_span("POST https://hooks.example", kind=trace.SpanKind.CLIENT):
        pass
    assert len(exported.get_finished_spans()) == 2

    never, exported_never = _tracer(sampling.ALWAYS_OFF)
    with never.start_as_current_span("GET /healthz", kind=trace.SpanKind.SERVER):
        pass
    assert exported_never.get_finished_spans() == ()
