"""CloudEvents 1.0 in Kafka binary mode: the value is the JSON ``data``; the attributes travel
as ``ce_*`` headers next to W3C ``traceparent``/``tracestate``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type")


class EnvelopeError(ValueError):
    """The message is not a valid CloudEvent in binary mode."""


Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Envelope:
    type: str
    source: str
    data: bytes
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = None
    trace: dict[str, str] = field(default_factory=dict)

    def headers(self) -> Headers:
        out: Headers = [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", self.time.isoformat().encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]
        if self.subject is not None:
            out.append(("ce_subject", self.subject.encode()))
        out.extend((k, v.encode()) for k, v in self.trace.items())
        return out

    @classmethod
    def from_kafka(
        cls, headers: Headers | tuple[tuple[str, bytes], ...], value: bytes | None
    ) -> Envelope:
        try:
            h = {k: v.decode() for k, v in headers or () if v is not None}
        except (UnicodeDecodeError, AttributeError) as exc:
            raise EnvelopeError("headers are not UTF-8 bytes") from exc
        missing = [k for k in _REQUIRED if k not in h]
        if missing:
            raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
        if h["ce_specversion"] != SPEC_VERSION:
            raise EnvelopeError(f"unsupported ce_specversion {h['ce_specversion']!r}")
        try:
            uuid.UUID(h["ce_id"])
        except ValueError as exc:
            raise EnvelopeError("ce_id is not a UUID") from exc
        if value is None:
            raise EnvelopeError("message has no value")
        try:
            when = datetime.fromisoformat(h["ce_time"]) if "ce_time" in h else datetime.now(UTC)
        except ValueError as exc:
            raise EnvelopeError("ce_time is not an RFC 3339 time") from exc
        trace = {k: h[k] for k in ("traceparent", "tracestate") if k in h}
        return cls(
            type=h["ce_type"],
            source=h["ce_source"],
            data=value,
            id=h["ce_id"],
            time=when,
            subject=h.get("ce_subject"),
            trace=trace,
        )
