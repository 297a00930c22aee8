"""OpenTelemetry and logging, configured only from the standard ``OTEL_*`` variables.

- ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``: the resource (read by the SDK).
- ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``: sampling (read by the SDK).
- ``OTEL_TRACES_EXPORTER``: ``otlp`` (default when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set),
  ``console`` or ``none``. The OTLP exporter reads its own endpoint variables.

Spans leave the process without the end user's address or user agent, whichever
instrumentation recorded them: see :class:`WithoutClientData`. Database calls made outside
any trace (the background loops polling for due work) are not recorded: see
:class:`WithoutOrphanQueries`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes
from pythonjsonlogger.json import JsonFormatter

_configured = False

# --- end users' data stays out of spans ------------------------------------------------------

# Who is behind a request (old and current semantic conventions); on client spans (database,
# webhooks) the peer is a server and is kept.
_CLIENT_KEYS = frozenset(
    {
        "client.address",
        "client.port",
        "client.socket.address",
        "client.socket.port",
        "net.peer.ip",
        "net.sock.peer.addr",
        "net.sock.peer.port",
        "http.client_ip",
        "http.user_agent",
        "user_agent.original",
    }
)
_SERVER_PEER_KEYS = frozenset(
    {"net.peer.name", "net.peer.port", "network.peer.address", "network.peer.port"}
)
# Request headers an operator could ask the instrumentation to capture (OTEL_INSTRUMENTATION_
# HTTP_CAPTURE_HEADERS_SERVER_REQUEST) that carry the same data.
_CLIENT_HEADERS = frozenset(
    {
        "user_agent",
        "forwarded",
        "x_forwarded_for",
        "x_real_ip",
        "true_client_ip",
        "cf_connecting_ip",
        "x_client_ip",
        "x_cluster_client_ip",
        "fastly_client_ip",
    }
)
_HEADER_PREFIX = "http.request.header."


def _is_client_data(key: str, kind: trace.SpanKind) -> bool:
    if key in _CLIENT_KEYS or (kind is trace.SpanKind.SERVER and key in _SERVER_PEER_KEYS):
        return True
    if key.startswith(_HEADER_PREFIX):
        return key[len(_HEADER_PREFIX) :].replace("-", "_") in _CLIENT_HEADERS
    return False


def _without_client_data(span: ReadableSpan) -> ReadableSpan:
    attributes = span.attributes or {}
    if not any(_is_client_data(key, span.kind) for key in attributes):
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes={k: v for k, v in attributes.items() if not _is_client_data(k, span.kind)},
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class WithoutClientData(SpanExporter):
    """Exports spans without the end user's IP address or user agent.

    Filtering here, at export, is the one place every span passes with its final attributes,
    whatever recorded them and whenever: the ASGI instrumentation sets the client address and
    user agent both at span creation and again on the started span, so a sampler's attribute
    filter is undone and a request hook cannot delete them; a span processor's ``on_end`` gets
    a read-only span."""

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._exporter.export([_without_client_data(span) for span in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class WithoutOrphanQueries(sampling.Sampler):
    """Drops a database call that starts a trace of its own, then defers to ``inner``.

    Every replica polls its tables for due work (outbox, holds, webhooks, reminders, sends)
    several times a second; each poll would be a one-span trace saying nothing, and they
    outnumber the real traces many times over: costly in a tracing backend, and enough to fill
    the exporter's queue on a busy machine so that the spans that matter are dropped. Queries
    made inside a request or a message's processing have a parent and are kept."""

    def __init__(self, inner: sampling.Sampler) -> None:
        self._inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> sampling.SamplingResult:
        orphan = not trace.get_current_span(parent_context).get_span_context().is_valid
        query = bool(attributes) and ("db.system" in attributes or "db.system.name" in attributes)
        if orphan and kind is SpanKind.CLIENT and query:
            return sampling.SamplingResult(sampling.Decision.DROP)
        return self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"WithoutOrphanQueries{{{self._inner.get_description()}}}"


def _exporters() -> list[SpanExporter]:
    default = "otlp" if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "none"
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", default).split(",")]
    out: list[SpanExporter] = []
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            out.append(OTLPSpanExporter())
        elif name == "console":
            out.append(ConsoleSpanExporter(out=sys.stderr))
    return out


def setup_tracing(service_name: str) -> TracerProvider:
    """Install the global tracer provider once per process."""
    global _configured
    current = trace.get_tracer_provider()
    if _configured and isinstance(current, TracerProvider):
        return current
    os.environ.setdefault("OTEL_SERVICE_NAME", service_name)
    # The SDK's own choice (OTEL_TRACES_SAMPLER, else parent-based always-on) decides the rest.
    sampler = WithoutOrphanQueries(sampling._get_from_env_or_default())
    provider = TracerProvider(resource=Resource.create(), sampler=sampler)
    for exporter in _exporters():
        provider.add_span_processor(exporting(exporter))
    trace.set_tracer_provider(provider)
    _configured = True
    return provider


def exporting(exporter: SpanExporter, *, batch: bool = True) -> SpanProcessor:
    """The processor that exports every span of the process, without client data."""
    private = WithoutClientData(exporter)
    return BatchSpanProcessor(private) if batch else SimpleSpanProcessor(private)


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def inject_context(context: Context | None = None) -> dict[str, str]:
    """The W3C ``traceparent``/``tracestate`` of the current (or given) context."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


def extract_context(carrier: Mapping[str, str]) -> Context:
    return propagate.extract(dict(carrier))


# --- logs -----------------------------------------------------------------------------------

# The local part may hold any RFC 5322 "atext" character, not only word characters.
_EMAIL_RE = re.compile(r"[\w!#$%&'*+/=?^`{|}~.-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4_RE = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
# Anything shaped like an IPv6 address (including "::" forms and an IPv4 tail) is a candidate;
# only what ipaddress accepts is masked, so times such as 12:30:45 stay readable.
_IPV6_CANDIDATE_RE = re.compile(
    r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?![\w:])"
)


def _mask_ipv6(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group())
    except ValueError:
        return match.group()
    return "[ip]"


def redact(text: str) -> str:
    """Emails and IP addresses never reach a log line in clear."""
    text = _EMAIL_RE.sub("[email]", text)
    text = _IPV6_CANDIDATE_RE.sub(_mask_ipv6, text)
    return _IPV4_RE.sub("[ip]", text)


class _RedactingJsonFormatter(JsonFormatter):
    """Exception texts and stacks can carry personal data too (e.g. a unique-key violation)."""

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return redact(super().formatStack(stack_info))


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        record.service = self.service
        if span.is_valid:
            record.trace_id = format(span.trace_id, "032x")
            record.span_id = format(span.span_id, "016x")
        record.msg = redact(record.getMessage())
        record.args = None
        # uvicorn adds an ANSI-coloured copy of its message; JSON lines do not need it.
        record.__dict__.pop("color_message", None)
        return True


def setup_logging(service_name: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_ContextFilter(service_name))
    handler.setFormatter(
        _RedactingJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints client IPs; our own middleware logs requests instead.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
