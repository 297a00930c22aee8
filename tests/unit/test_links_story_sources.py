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
    assert ledger.postings is None  # the statement's, asked apart (fetch_postings)
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


def _line(n: int, amount: int, balance: int, **kw: Any) -> dict[str, Any]:
    """A line as rewards' statement writes it."""
    return {
        "entry_id": n, "at": f"2026-11-02T12:00:{n % 60:02d}Z", "kind": "grant",
        "entry_kind": "issue", "account": f"participant:{PROGRAM}:{PARTICIPANT}",
        "role": "balances", "unit": "USD", "amount": amount, "balance": balance,
        "reward_id": str(uuid.UUID(int=9)), "redemption_id": None, "adjustment_id": None,
        "actor": None, "reason": None, **kw,
    }  # fmt: skip


def _statement(lines: list[dict[str, Any]], cursor: str | None, more: bool) -> dict[str, Any]:
    return {"program_id": str(PROGRAM), "participant_id": str(PARTICIPANT), "totals": {},
            "lines": lines, "next_cursor": cursor, "has_more": more}  # fmt: skip


async def _postings(answer: Callable[[httpx.Request], httpx.Response]) -> Any:
    async with _client(answer) as client:
        return await story_sources.fetch_postings(client, SOURCES, PROGRAM, PARTICIPANT)


async def test_postings_are_the_statements_lines_with_running_balances() -> None:
    seen: list[httpx.Request] = []
    adjustment = _line(2, -500, 1500, kind="adjustment", entry_kind="adjustment",
                       reward_id=None, actor="admin", reason="double grant")  # fmt: skip

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_statement([_line(1, 2000, 2000), adjustment], "c2", False))

    postings, more, state = await _postings(answer)
    assert (state.part, state.source, state.state, state.detail) == (
        "postings", "rewards", "ok", None,
    )  # fmt: skip
    assert more is False
    grant, manual = postings
    assert (grant.kind, grant.role, grant.amount, grant.balance, grant.reward_id) == (
        "grant", "balances", 2000, 2000, uuid.UUID(int=9),
    )  # fmt: skip
    assert (manual.kind, manual.amount, manual.balance, manual.actor, manual.reason) == (
        "adjustment", -500, 1500, "admin", "double grant",
    )  # fmt: skip
    [request] = seen
    assert request.headers["authorization"] == "Bearer rk_key"
    assert request.url.path == f"/v1/programs/{PROGRAM}/participants/{PARTICIPANT}/statement"
    assert request.url.params["limit"] == str(story_sources.POSTINGS_SHOWN)
    assert "cursor" not in request.url.params


async def test_postings_follow_the_cursor_up_to_the_bound_and_say_there_are_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(story_sources, "POSTINGS_SHOWN", 5)
    asked: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        asked.append(params)
        start = int(params.get("cursor", "0"))
        # Rewards may answer fewer lines than asked; the cursor then goes on.
        lines = [_line(n, 100, 100 * (n + 1)) for n in range(start, start + 2)]
        return httpx.Response(200, json=_statement(lines, str(start + 2), True))

    postings, more, state = await _postings(answer)
    assert state.state == "ok" and more is True
    assert [p.balance for p in postings] == [100, 200, 300, 400, 500]
    assert asked == [{"limit": "5"}, {"limit": "3", "cursor": "2"}, {"limit": "1", "cursor": "4"}]


async def test_postings_stop_at_the_last_page() -> None:
    pages = {None: _statement([_line(1, 100, 100)], "p2", True),
             "p2": _statement([_line(2, 50, 150)], "p3", False)}  # fmt: skip

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    postings, more, state = await _postings(answer)
    assert state.state == "ok" and more is False
    assert [p.balance for p in postings] == [100, 150]


async def test_a_participant_rewards_has_not_heard_of_has_no_postings_said_so() -> None:
    not_found = {"type": "https://errors/participant-not-found", "status": 404,
                 "detail": "No participant", "field": "participant_id"}  # fmt: skip
    postings, more, state = await _postings(lambda r: httpx.Response(404, json=not_found))
    assert postings == [] and more is False
    assert state.state == "ok" and "not heard of" in (state.detail or "")


async def test_a_rewards_without_a_statement_does_not_offer_postings() -> None:
    unknown_path = {"type": "https://errors/not-found", "status": 404, "detail": "Not Found"}
    postings, more, state = await _postings(lambda r: httpx.Response(404, json=unknown_path))
    assert postings is None and more is False
    assert (state.state, state.detail) == (
        "not_offered", "this rewards version offers no ledger statement",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (_raise(httpx.ConnectError("refused")), "rewards could not be reached (ConnectError)"),
        (lambda r: httpx.Response(502), "rewards answered 502"),
        (lambda r: httpx.Response(422, json={"field": "cursor"}), "rewards answered 422"),
        (lambda r: httpx.Response(200, json={"lines": [{"kind": "grant"}], "has_more": False,
                                             "next_cursor": None}),
         "rewards answered in a shape links does not know"),
    ],
)  # fmt: skip
async def test_missing_postings_say_why(
    answer: Callable[[httpx.Request], httpx.Response], detail: str
) -> None:
    postings, more, state = await _postings(answer)
    assert postings is None and more is False
    assert (state.part, state.state, state.detail) == ("postings", "unavailable", detail)


async def test_the_whole_call_is_bounded_not_only_each_read() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)  # a transport that never times out by itself
        return httpx.Response(200, json=BALANCE)

    started = time.monotonic()
    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as client:
        ledger, state = await story_sources.fetch_ledger(client, SOURCES, PROGRAM, PARTICIPANT)
    assert time.monotonic() - started < 2
    assert ledger is None and state.detail == "rewards did not answer within 0.5 s"
