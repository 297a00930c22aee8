"""The click writer builds ``link.clicked`` JSON by hand for speed: it must always be what the
contract model would accept and mean the same thing."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from services.links.gateway.click_events import encode_value, headers_for
from shared.contracts import LinkClicked
from shared.messaging.envelope import Envelope

codes = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
channels = st.none() | st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True)
reasons = st.sampled_from([None, "bot", "prefetch", "head"])


@given(
    code=codes,
    channel=channels,
    reason=reasons,
    unique=st.booleans(),
    micro=st.integers(0, 999_999),
)
def test_the_hand_built_json_is_a_valid_click(
    code: str, channel: str | None, reason: str | None, unique: bool, micro: int
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    when = f"2026-11-22T12:00:00.{micro:06d}+00:00"
    click = (ids[0], code, ids[1], ids[2], 0.0, "203.0.113.9", [], False, channel)
    value = encode_value(click, when=when, visitor="ab" * 16, unique=unique, reason=reason)
    event = LinkClicked.model_validate_json(value)
    assert str(event.click_id) == ids[0] and event.code == code
    assert str(event.program_id) == ids[1] and str(event.participant_id) == ids[2]
    assert event.clicked_at == datetime.fromisoformat(when)
    assert event.attributable is (reason is None)
    assert event.non_attributable_reason == reason
    assert event.unique is unique and event.channel == channel
    ours, theirs = json.loads(value), json.loads(event.model_dump_json())
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k != "clicked_at"} == {
        k: v for k, v in theirs.items() if k != "clicked_at"
    }
    assert "203.0.113.9" not in value


def test_headers_are_a_cloudevent_whose_id_is_the_click_id() -> None:
    click_id = str(uuid.uuid4())
    env = Envelope.from_kafka(
        headers_for(click_id.encode(), b"2026-11-22T12:00:00.000001+00:00"), b"{}"
    )
    assert env.id == click_id
    assert env.type == LinkClicked.TYPE
    assert env.source == "/services/links"
