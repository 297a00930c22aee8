"""W3C trace context in and out of message headers."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from shared.telemetry import extract_context, inject_context


def test_inject_then_extract_keeps_the_span_context() -> None:
    tracer = TracerProvider().get_tracer("unit")
    with tracer.start_as_current_span("request") as span:
        carrier = inject_context()
        sent = span.get_span_context()
    assert set(carrier) >= {"traceparent"}
    assert sent.trace_flags.sampled
    flags = f"{int(sent.trace_flags):02x}"
    assert carrier["traceparent"] == f"00-{sent.trace_id:032x}-{sent.span_id:016x}-{flags}"
    got = trace.get_current_span(extract_context(carrier)).get_span_context()
    assert got.is_valid
    assert got.is_remote
    assert got.trace_id == sent.trace_id
    assert got.span_id == sent.span_id
    assert got.trace_flags == sent.trace_flags


def test_inject_an_explicit_context() -> None:
    tracer = TracerProvider().get_tracer("unit")
    with tracer.start_as_current_span("request") as span:
        ctx = trace.set_span_in_context(span)
        sent = span.get_span_context()
    # Outside the span, the given context still decides what is injected.
    assert inject_context() == {}
    carrier = inject_context(ctx)
    assert carrier["traceparent"].split("-")[1] == f"{sent.trace_id:032x}"


def test_child_span_continues_the_extracted_trace() -> None:
    tracer = TracerProvider().get_tracer("unit")
    with tracer.start_as_current_span("publish") as parent:
        carrier = inject_context()
    with tracer.start_as_current_span("process", context=extract_context(carrier)) as child:
        pass
    assert child.get_span_context().trace_id == parent.get_span_context().trace_id
    assert child.parent is not None
    assert child.parent.span_id == parent.get_span_context().span_id


def test_extract_of_nothing_is_an_invalid_span() -> None:
    assert not trace.get_current_span(extract_context({})).get_span_context().is_valid
    bad = {"traceparent": "garbage"}
    assert not trace.get_current_span(extract_context(bad)).get_span_context().is_valid
