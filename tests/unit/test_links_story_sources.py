"""The parts of the support story asked of rewards and notifications: what each answer (or
silence) becomes, through httpx's mock transport (no network)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.links.insights import story_sources
from services.links.insights.story_sources import Sources

PROGRAM, PARTICIPANT = uuid.UUID(int=1), uuid.UUID(int=2)
SOURCES = Sources(
    rewards_url="http://rewards.test",
    notifications_url="http://notifications.test",
    token="rk_key",
    timeout_s=0.5,
)
BALANCE = {
    "participant_id": str(PARTICIPANT),
    "balances": {"USD": 2000},
    "pending": {"USD": 1000},
    "rewards": [
        {"id": str(uuid.UUID(int=9)), "conversion_id": str(uuid.UUID(int=8)), "rule": "base",
         "side": "referrer", "amount": 2000, "requested_amount": None, "unit": "USD",
         "perk": None, "status": "issued", "program_version": 1, "variant": None,
         "fulfilment": "ledger", "coupon_code": None, "available_at": None,
         "issued_at": "2026-11-02T12:00:01Z", "failure_reason": None},
    ],
    "progress": {},
}  # fmt: skip
DELIVERY = {
    "id": str(uuid.UUID(int=5)), "event_id": str(uuid.UUID(int=6)),
    "participant_id": str(PARTICIPANT), "channel": "email", "trigger": "participant.enrolled",
    "category": "transactional", "endpoint_id": None, "status": "sent", "reason": None,
    "attempts": 1, "next_attempt_at": None, "created_at": "2026-11-02T09:00:00Z",
    "sent_at": "2026-11-02T09:00:02Z", "attempt_log": [],
}  # fmt: skip


def _client(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def _ledger(answer: Callable[[httpx.Request], httpx.Response], **kw: Any) -> Any:
    sources = Sources(**{**SOURCES.__dict__, **kw})
    async with _client(answer) as client:
        return await story_sources.fetch_ledger(client, sources, PROGRAM, PARTICIPANT)


async def test_the_ledger_is_asked_with_the_callers_key_and_mapped() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=BALANCE)

    ledger, state = await _ledger(answer)
    assert state.state == "ok" and state.detail is None
    assert ledger.balances == {"USD": 2000} and ledger.pending == {"USD": 1000}
    [reward] = ledger.rewards
    assert (reward.reward_id, reward.status, reward.fulfilment) == (
        uuid.UUID(int=9),
        "issued",
        "ledger",
    )
    assert ledger.postings is None
    [request] = seen
    assert request.headers["authorization"] == "Bearer rk_key"
    assert str(request.url) == (
        f"http://rewards.test/v1/programs/{PROGRAM}/participants/{PARTICIPANT}/rewards"
    )


async def test_a_participant_rewards_has_not_heard_of_is_an_empty_ledger_said_so() -> None:
    ledger, state = await _ledger(
        lambda r: httpx.Response(404, json={"type": "participant-not-found"})
    )
    assert (ledger.balances, ledger.pending, ledger.rewards) == ({}, {}, [])
    assert state.state == "ok" and "not heard of" in (state.detail or "")


def _raise(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (_raise(httpx.ReadTimeout("slow")), "rewards did not answer within 0.5 s"),
        (_raise(httpx.ConnectError("refused")), "rewards could not be reached (ConnectError)"),
        (lambda r: httpx.Response(503), "rewards answered 503"),
        (lambda r: httpx.Response(403), "rewards refused the key (403)"),
        (lambda r: httpx.Response(200, text="<html>"),
         "rewards answered something other than JSON"),
        (lambda r: httpx.Response(200, json={"balances": {}}),
         "rewards answered in a shape links does not know"),
    ],
)  # fmt: skip
async def test_a_missing_ledger_says_why(
    answer: Callable[[httpx.Request], httpx.Response], detail: str
) -> None:
    ledger, state = await _ledger(answer)
    assert ledger is None
    assert (state.part, state.source, state.state, state.detail) == (
        "ledger", "rewards", "unavailable", detail,
    )  # fmt: skip


async def test_without_a_key_nothing_is_asked() -> None:
    ledger, state = await _ledger(_raise(AssertionError("asked")), token=None)
    assert ledger is None and state.detail == "no key to ask rewards with"


async def test_messages_come_from_the_delivery_log_of_this_participant() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [DELIVERY], "next_cursor": "1.ab"})

    async with _client(answer) as client:
        messages, more, state = await story_sources.fetch_messages(
            client, SOURCES, PROGRAM, PARTICIPANT
        )
    assert state.state == "ok" and more is True
    [message] = messages
    assert (message.message_id, message.trigger, message.status) == (
        uuid.UUID(int=5), "participant.enrolled", "sent",
    )  # fmt: skip
    assert seen[0].url.params["participant_id"] == str(PARTICIPANT)
    assert seen[0].url.path == f"/v1/programs/{PROGRAM}/deliveries"


async def test_messages_missing_when_notifications_is_down() -> None:
    async with _client(_raise(httpx.ConnectError("refused"))) as client:
        messages, more, state = await story_sources.fetch_messages(
            client, SOURCES, PROGRAM, PARTICIPANT
        )
    assert messages is None and more is False
    assert (state.part, state.source, state.state) == ("messages", "notifications", "unavailable")


async def test_postings_are_not_offered_until_rewards_serves_a_statement() -> None:
    async with _client(_raise(AssertionError("asked"))) as client:
        postings, state = await story_sources.fetch_postings(client, SOURCES, PROGRAM, PARTICIPANT)
    assert postings is None and state.state == "not_offered" and state.part == "postings"


async def test_the_whole_call_is_bounded_not_only_each_read() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)  # a transport that never times out by itself
        return httpx.Response(200, json=BALANCE)

    started = time.monotonic()
    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as client:
        ledger, state = await story_sources.fetch_ledger(client, SOURCES, PROGRAM, PARTICIPANT)
    assert time.monotonic() - started < 2
    assert ledger is None and state.detail == "rewards did not answer within 0.5 s"
