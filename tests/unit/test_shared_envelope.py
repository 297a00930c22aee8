"""CloudEvents 1.0 binary-mode envelope: headers out, headers in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shared.messaging.envelope import CONTENT_TYPE, SPEC_VERSION, Envelope, EnvelopeError

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
WHEN = datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=UTC)


def _envelope(**overrides: object) -> Envelope:
    fields: dict[str, object] = {
        "type": "referral.converted.v1",
        "source": "/services/attribution",
        "data": b'{"amount": 2000}',
        "id": "7d4a8a5e-8f0b-4e1a-9a55-3c6f0f6f2b11",
        "time": WHEN,
        "subject": "referral/42",
        "trace": {"traceparent": TRACEPARENT, "tracestate": "vendor=1"},
    }
    fields.update(overrides)
    return Envelope(**fields)  # type: ignore[arg-type]


def _valid_headers() -> list[tuple[str, bytes]]:
    return _envelope().headers()


def _without(name: str) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in _valid_headers() if k != name]


def _replaced(name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, value if k == name else v) for k, v in _valid_headers()]


def test_round_trip_keeps_every_attribute() -> None:
    env = _envelope()
    back = Envelope.from_kafka(env.headers(), env.data)
    assert back == env
    assert back.id == env.id
    assert back.type == "referral.converted.v1"
    assert back.source == "/services/attribution"
    assert back.subject == "referral/42"
    assert back.time == WHEN
    assert back.data == b'{"amount": 2000}'
    assert back.trace == {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}


def test_round_trip_accepts_a_tuple_of_headers_as_aiokafka_gives_them() -> None:
    env = _envelope()
    assert Envelope.from_kafka(tuple(env.headers()), env.data) == env


def test_round_trip_without_subject_or_trace() -> None:
    env = _envelope(subject=None, trace={})
    names = [k for k, _ in env.headers()]
    assert "ce_subject" not in names
    assert "traceparent" not in names
    back = Envelope.from_kafka(env.headers(), env.data)
    assert back.subject is None
    assert back.trace == {}
    assert back == env


def test_round_trip_keeps_a_non_utc_offset() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))
    back = Envelope.from_kafka(_envelope(time=when).headers(), b"{}")
    assert back.time == when
    assert back.time.utcoffset() == timedelta(hours=-5)


def test_required_cloudevents_headers_are_present() -> None:
    env = _envelope()
    headers = env.headers()
    names = [k for k, _ in headers]
    assert len(names) == len(set(names)), "a header is sent twice"
    h = dict(headers)
    assert h["ce_specversion"] == b"1.0"
    assert SPEC_VERSION == "1.0"
    assert h["ce_id"] == env.id.encode()
    assert h["ce_source"] == b"/services/attribution"
    assert h["ce_type"] == b"referral.converted.v1"
    assert h["ce_subject"] == b"referral/42"
    assert h["content-type"] == b"application/json" == CONTENT_TYPE.encode()
    assert datetime.fromisoformat(h["ce_time"].decode()) == WHEN
    assert h["traceparent"] == TRACEPARENT.encode()
    assert all(isinstance(v, bytes) for v in h.values())


def test_defaults_are_a_fresh_uuid_and_an_aware_now() -> None:
    before = datetime.now(UTC)
    a = Envelope(type="t.v1", source="/s", data=b"{}")
    b = Envelope(type="t.v1", source="/s", data=b"{}")
    after = datetime.now(UTC)
    assert uuid.UUID(a.id).version == 4
    assert a.id != b.id
    assert a.time.tzinfo is not None
    assert before <= a.time <= after


@pytest.mark.parametrize("name", ["ce_specversion", "ce_id", "ce_source", "ce_type"])
def test_from_kafka_rejects_a_missing_required_header(name: str) -> None:
    with pytest.raises(EnvelopeError, match=name):
        Envelope.from_kafka(_without(name), b"{}")


@pytest.mark.parametrize("headers", [[], None, ()])
def test_from_kafka_rejects_no_headers_at_all(headers: object) -> None:
    with pytest.raises(EnvelopeError, match="missing CloudEvents headers"):
        Envelope.from_kafka(headers, b"{}")  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [b"0.3", b"1", b"1.0 ", b"2.0", b""])
def test_from_kafka_rejects_another_specversion(version: bytes) -> None:
    with pytest.raises(EnvelopeError, match="specversion"):
        Envelope.from_kafka(_replaced("ce_specversion", version), b"{}")


@pytest.mark.parametrize("bad_id", [b"", b"42", b"not-a-uuid", b"7d4a8a5e-8f0b-4e1a-9a55"])
def test_from_kafka_rejects_a_ce_id_that_is_not_a_uuid(bad_id: bytes) -> None:
    with pytest.raises(EnvelopeError, match="UUID"):
        Envelope.from_kafka(_replaced("ce_id", bad_id), b"{}")


def test_from_kafka_rejects_a_message_without_value() -> None:
    with pytest.raises(EnvelopeError, match="no value"):
        Envelope.from_kafka(_valid_headers(), None)


def test_from_kafka_accepts_an_empty_value() -> None:
    # An empty body is a value (the contract check decides whether it is valid data).
    assert Envelope.from_kafka(_valid_headers(), b"").data == b""


@pytest.mark.parametrize("bad_time", [b"yesterday", b"2024-13-01T00:00:00+00:00", b""])
def test_from_kafka_rejects_a_bad_ce_time(bad_time: bytes) -> None:
    with pytest.raises(EnvelopeError, match="ce_time"):
        Envelope.from_kafka(_replaced("ce_time", bad_time), b"{}")


@pytest.mark.parametrize("name", ["ce_type", "ce_source", "ce_subject", "traceparent"])
def test_from_kafka_rejects_headers_that_are_not_utf8(name: str) -> None:
    with pytest.raises(EnvelopeError, match="UTF-8"):
        Envelope.from_kafka(_replaced(name, b"\xff\xfe"), b"{}")


def test_from_kafka_keeps_only_the_w3c_trace_headers() -> None:
    headers = [*_valid_headers(), ("x-other", b"1"), ("baggage", b"k=v")]
    assert Envelope.from_kafka(headers, b"{}").trace == {
        "traceparent": TRACEPARENT,
        "tracestate": "vendor=1",
    }


def test_from_kafka_rejects_a_null_header_value() -> None:
    headers = [(k, None if k == "ce_id" else v) for k, v in _valid_headers()]
    with pytest.raises(EnvelopeError):
        Envelope.from_kafka(headers, b"{}")  # type: ignore[arg-type]


@given(
    data=st.binary(max_size=2048),
    subject=st.none() | st.text(max_size=200),
    source=st.text(min_size=1, max_size=100),
    event_type=st.from_regex(r"[a-z]+(\.[a-z_]+)+\.v[1-9][0-9]?", fullmatch=True),
    when=st.datetimes(timezones=st.timezones() | st.just(UTC)),
    event_id=st.uuids(),
)
@example(
    data=b"", subject="", source="/", event_type="a.b.v1", when=WHEN, event_id=uuid.UUID(int=0)
)
def test_round_trip_property(
    data: bytes,
    subject: str | None,
    source: str,
    event_type: str,
    when: datetime,
    event_id: uuid.UUID,
) -> None:
    env = Envelope(
        type=event_type,
        source=source,
        data=data,
        id=str(event_id),
        time=when,
        subject=subject,
        trace={"traceparent": TRACEPARENT},
    )
    back = Envelope.from_kafka(env.headers(), env.data)
    assert back.data == data
    assert back.subject == subject
    assert back.source == source
    assert back.type == event_type
    assert back.id == str(event_id)
    # The same instant and offset. (Compared in UTC: PEP 495 makes inter-zone comparison of
    # fold=1 times in a repeated hour unequal by definition, which hypothesis finds.)
    assert back.time.astimezone(UTC) == when.astimezone(UTC)
    assert back.time.utcoffset() == when.utcoffset()
    assert back.trace == {"traceparent": TRACEPARENT}
