"""The click's traceparent: taken from the request only when well formed, journaled after a
tab (old lines without one still read), sent as a header only when there is one."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.links.gateway.click_events import headers_for
from services.links.gateway.click_journal import journal_line, read_records
from services.links.gateway.click_trace import request_traceparent

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
VALUE = '{"click_id":"%s","code":"abc","clicked_at":"2026-11-29T07:00:00.000001+00:00"}'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (CALLER.encode(), CALLER),
        (b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01", ""),  # an all-zero trace id is invalid
        (b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", ""),
        (CALLER.encode() + b"\tx", ""),
        (b"garbage", ""),
    ],
)
def test_only_a_well_formed_request_traceparent_is_kept(header: bytes, expected: str) -> None:
    headers = [(b"user-agent", b"Mozilla/5.0"), (b"traceparent", header)]
    assert request_traceparent(headers) == expected
    assert request_traceparent(headers[:1]) == ""


def test_journal_lines_with_and_without_a_traceparent_read_back(tmp_path: Path) -> None:
    first = VALUE % "11111111-1111-4111-8111-111111111111"
    second = VALUE % "22222222-2222-4222-8222-222222222222"
    path = tmp_path / "clicks-000000000001.log"
    lines = [journal_line(first, CALLER), second]  # the second as older journals held it
    path.write_text("\n".join(lines) + "\n")
    records, end = read_records(path, 0, 10)
    assert end == path.stat().st_size
    assert [(r[3], r[4]) for r in records] == [
        (first.encode(), CALLER.encode()),
        (second.encode(), b""),
    ]
    assert journal_line(second, "") == second


def test_the_traceparent_header_is_sent_only_when_there_is_one() -> None:
    assert ("traceparent", CALLER.encode()) in headers_for(b"id", b"t", CALLER.encode())
    assert "traceparent" not in dict(headers_for(b"id", b"t", b""))
