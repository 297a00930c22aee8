"""Asking links about program keys: caching, one call per key in flight, a bound on calls, and
what a service answers when links says no or cannot be asked. Links is an in-process httpx
transport and the database a fake; the clock is a counter the tests move."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.http import auth
from shared.http.auth import hash_key, program_for_key
from shared.http.key_directory import (
    INTERNAL_KEYS_PATH,
    KeyCheckUnavailable,
    KeyDirectory,
    KeyStatus,
    TokenBucket,
)
from shared.http.problems import Problem

PROGRAM = uuid.uuid4()
ADMIN = "admin-key-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Links:
    """Links' internal endpoint: a dict of key hash -> KeyStatus, counting calls."""

    def __init__(self, keys: dict[str, KeyStatus] | None = None, *, status: int = 0) -> None:
        self.keys = keys or {}
        self.calls: list[str] = []
        self.fail_with = status  # a non-zero status: every call answers it
        self.delay_s = 0.0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {ADMIN}"
        assert request.url.path.startswith(INTERNAL_KEYS_PATH + "/")
        key_hash = request.url.path.rsplit("/", 1)[1]
        self.calls.append(key_hash)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_with:
            return httpx.Response(self.fail_with, json={"status": self.fail_with})
        known = self.keys.get(key_hash)
        if known is None:
            return httpx.Response(404, json={"status": 404})
        body = {"key_hash": key_hash, "program_id": str(known.program_id)}
        return httpx.Response(200, json={**body, "revoked": known.revoked})


def directory(
    links: Links | Callable[[httpx.Request], Any],
    clock: Clock,
    *,
    rate_per_s: float = 100.0,
    ttl_s: float = 10.0,
    negative_ttl_s: float = 60.0,
) -> KeyDirectory:
    handler = links.handle if isinstance(links, Links) else links
    return KeyDirectory(
        "http://links.internal",
        ADMIN,
        ttl_s=ttl_s,
        negative_ttl_s=negative_ttl_s,
        rate_per_s=rate_per_s,
        timeout_s=1.0,
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        clock=clock,
    )


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=5, burst=5, clock=clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.2  # one token back
    assert bucket.take() and not bucket.take()
    clock.now += 100  # never more than the burst
    assert sum(bucket.take() for _ in range(20)) == 5


async def test_an_active_key_is_asked_once_per_ttl() -> None:
    clock, key = Clock(), hash_key("rk_a")
    links = Links({key: KeyStatus(PROGRAM, revoked=False)})
    keys = directory(links, clock, ttl_s=10)
    assert await keys.status(key) == KeyStatus(PROGRAM, False)
    clock.now += 9.9
    assert await keys.status(key) == KeyStatus(PROGRAM, False)
    assert len(links.calls) == 1
    clock.now += 0.2  # past the TTL: links is asked again, and now says revoked
    links.keys[key] = KeyStatus(PROGRAM, revoked=True)
    assert await keys.status(key) == KeyStatus(PROGRAM, True)
    assert len(links.calls) == 2


async def test_unknown_and_revoked_keys_are_remembered_for_the_negative_ttl() -> None:
    clock = Clock()
    revoked = hash_key("rk_revoked")
    links = Links({revoked: KeyStatus(PROGRAM, revoked=True)})
    keys = directory(links, clock, negative_ttl_s=60)
    for _ in range(50):
        assert await keys.status(hash_key("rk_bad")) is None
        assert (await keys.status(revoked)) == KeyStatus(PROGRAM, True)
    assert len(links.calls) == 2
    clock.now += 61
    assert await keys.status(hash_key("rk_bad")) is None
    assert len(links.calls) == 3


async def test_concurrent_requests_with_one_key_make_one_call() -> None:
    key = hash_key("rk_a")
    links = Links({key: KeyStatus(PROGRAM, revoked=False)})
    links.delay_s = 0.05
    keys = directory(links, Clock())
    answers = await asyncio.gather(*(keys.status(key) for _ in range(100)))
    assert answers == [KeyStatus(PROGRAM, False)] * 100
    assert links.calls == [key]


async def test_a_flood_of_bad_keys_reaches_links_at_the_bounded_rate() -> None:
    clock, links = Clock(), Links()
    keys = directory(links, clock, rate_per_s=20)
    outcomes = {"unknown": 0, "throttled": 0}
    for i in range(1000):
        try:
            assert await keys.status(hash_key(f"rk_bad_{i}")) is None
            outcomes["unknown"] += 1
        except KeyCheckUnavailable:
            outcomes["throttled"] += 1
    assert len(links.calls) == outcomes["unknown"] == 20
    assert outcomes["throttled"] == 980
    clock.now += 1.0  # a second later, another second's worth of calls and no more
    for i in range(1000, 1100):
        with contextlib.suppress(KeyCheckUnavailable):
            await keys.status(hash_key(f"rk_bad_{i}"))
    assert len(links.calls) == 40


async def test_re_confirming_known_keys_never_takes_a_new_keys_turn() -> None:
    clock = Clock()
    known = [hash_key(f"rk_known_{i}") for i in range(50)]
    new = hash_key("rk_new")
    links = Links({k: KeyStatus(PROGRAM, revoked=False) for k in [*known, new]})
    keys = directory(links, clock, rate_per_s=5)
    for key in known:  # more than the bucket holds: none is throttled
        assert await keys.status(key, known_here=True) == KeyStatus(PROGRAM, False)
    assert await keys.status(new) == KeyStatus(PROGRAM, False)
    assert len(links.calls) == 51


@pytest.mark.parametrize("status", [401, 403, 500, 503])
async def test_an_odd_answer_from_links_is_unavailable_not_a_verdict(status: int) -> None:
    links = Links(status=status)
    clock = Clock()
    keys = directory(links, clock)
    with pytest.raises(KeyCheckUnavailable, match=str(status)):
        await keys.status(hash_key("rk_a"))
    links.fail_with = 0
    # Links is left alone for a moment (no request waits on a failing links), then asked.
    for key in ("rk_a", "rk_b"):
        with pytest.raises(KeyCheckUnavailable, match="a moment ago"):
            await keys.status(hash_key(key))
    assert len(links.calls) == 1
    clock.now += keys.retry_after_s
    assert await keys.status(hash_key("rk_a")) is None


async def test_links_unreachable_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(KeyCheckUnavailable, match="cannot be reached"):
        await directory(refuse, Clock()).status(hash_key("rk_a"))


# --- program_for_key: the local copy (from events) and links' word together


class FakeDb:
    """The service's ``api_keys`` table."""

    def __init__(self, rows: dict[str, KeyStatus] | None = None) -> None:
        self.rows = rows or {}

    async def fetchrow(self, _sql: str, key_hash: str) -> dict[str, Any] | None:
        row = self.rows.get(key_hash)
        return None if row is None else {"program_id": row.program_id, "revoked": row.revoked}


@pytest.fixture(autouse=True)
def _empty_key_cache() -> None:
    auth.forget_cached_keys()


async def test_a_key_links_issued_is_accepted_before_its_event() -> None:
    links = Links({hash_key("rk_new"): KeyStatus(PROGRAM, revoked=False)})
    assert await program_for_key(FakeDb(), "rk_new", directory(links, Clock())) == PROGRAM  # type: ignore[arg-type]


async def test_an_unknown_key_is_refused_with_403() -> None:
    with pytest.raises(Problem) as refused:
        await program_for_key(FakeDb(), "rk_bad", directory(Links(), Clock()))  # type: ignore[arg-type]
    assert (refused.value.status, refused.value.field) == (403, "Authorization")


async def test_links_down_fails_closed_for_a_key_not_known_here() -> None:
    keys = directory(Links(status=503), Clock())
    with pytest.raises(Problem) as refused:
        await program_for_key(FakeDb(), "rk_new", keys)  # type: ignore[arg-type]
    problem = refused.value
    assert (problem.status, problem.type, problem.field) == (
        503,
        "key-check-unavailable",
        "Authorization",
    )
    assert "Retry" in problem.detail and problem.headers and "Retry-After" in problem.headers


async def test_links_down_keeps_a_key_known_from_its_event() -> None:
    db = FakeDb({hash_key("rk_old"): KeyStatus(PROGRAM, revoked=False)})
    keys = directory(Links(status=503), Clock())
    assert await program_for_key(db, "rk_old", keys) == PROGRAM  # type: ignore[arg-type]


async def test_a_revocation_at_links_wins_over_a_stale_local_copy() -> None:
    db = FakeDb({hash_key("rk_old"): KeyStatus(PROGRAM, revoked=False)})
    links = Links({hash_key("rk_old"): KeyStatus(PROGRAM, revoked=True)})
    with pytest.raises(Problem) as refused:
        await program_for_key(db, "rk_old", directory(links, Clock()))  # type: ignore[arg-type]
    assert refused.value.status == 403


async def test_a_key_revoked_here_is_refused_without_asking_links() -> None:
    db = FakeDb({hash_key("rk_old"): KeyStatus(PROGRAM, revoked=True)})
    links = Links({hash_key("rk_old"): KeyStatus(PROGRAM, revoked=False)})
    with pytest.raises(Problem):
        await program_for_key(db, "rk_old", directory(links, Clock()))  # type: ignore[arg-type]
    assert links.calls == []


async def test_without_a_directory_only_the_local_copy_counts() -> None:
    db = FakeDb({hash_key("rk_old"): KeyStatus(PROGRAM, revoked=False)})
    assert await program_for_key(db, "rk_old") == PROGRAM  # type: ignore[arg-type]
    with pytest.raises(Problem):
        await program_for_key(db, "rk_new")  # type: ignore[arg-type]
