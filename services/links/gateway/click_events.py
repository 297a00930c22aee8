"""The ``link.clicked`` message of one captured click: its JSON value and CloudEvents headers,
written directly (not through the model) because the writer encodes thousands a second."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.contracts import LinkClicked

# (click_id, code, program_id, participant_id, monotonic time, ip, request headers, HEAD?,
# channel): what the redirect hands over; everything else is worked out by the writer.
Click = tuple[str, str, str, str, float, str, list[tuple[bytes, bytes]], bool, str | None]
# (ce_id, key, ce_time, value) of one message, as journaled and sent.
Record = tuple[bytes, bytes, bytes, bytes]

TOPIC = LinkClicked.TOPIC
_SOURCE = b"/services/links"
_TYPE = LinkClicked.TYPE.encode()


def encode_value(click: Click, *, when: str, visitor: str, unique: bool, reason: str | None) -> str:
    """The ``link.clicked`` JSON of one click. Every value interpolated here is JSON-safe by
    construction (UUIDs, codes and channels from restricted alphabets, hex, an RFC 3339 time),
    so it is written directly rather than through the model; tests check it against it."""
    channel = f'"{click[8]}"' if click[8] else "null"
    why = f'"{reason}"' if reason else "null"
    return (
        f'{{"click_id":"{click[0]}","code":"{click[1]}","program_id":"{click[2]}",'
        f'"participant_id":"{click[3]}","clicked_at":"{when}",'
        f'"attributable":{"false" if reason else "true"},'
        f'"unique":{"true" if unique else "false"},'
        f'"channel":{channel},"visitor_hash":"{visitor}","non_attributable_reason":{why}}}'
    )


def headers_for(ce_id: bytes, ce_time: bytes) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", ce_id),
        ("ce_source", _SOURCE),
        ("ce_type", _TYPE),
        ("ce_time", ce_time),
        ("content-type", b"application/json"),
    ]


class ClickClock:
    """RFC 3339 UTC times with microseconds; the part down to the second is cached, since the
    writer stamps thousands of clicks a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def stamp(self, ts: float) -> str:
        second = int(ts)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{int((ts - second) * 1e6):06d}+00:00"
