"""Visitors without identities: hashed with a daily key; repeats within an hour; bots."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.links.gateway.ratelimit import RateLimiter
from services.links.gateway.visitors import BotDetector, UniqueClicks, VisitorHasher

DAY = 86_400.0


def test_a_visitor_hash_is_stable_within_a_day_and_changes_with_the_day() -> None:
    hasher = VisitorHasher(b"secret")
    a = hasher.visitor(DAY * 100 + 10, "203.0.113.1", "UA")
    assert a == hasher.visitor(DAY * 100 + 80_000, "203.0.113.1", "UA")
    assert a != hasher.visitor(DAY * 101 + 10, "203.0.113.1", "UA")
    assert a != hasher.visitor(DAY * 100 + 10, "203.0.113.2", "UA")
    assert a != hasher.visitor(DAY * 100 + 10, "203.0.113.1", "UA2")
    assert a != VisitorHasher(b"other").visitor(DAY * 100 + 10, "203.0.113.1", "UA")
    assert "203.0.113" not in a and len(a) == 32


def test_a_repeat_within_the_hour_is_not_unique() -> None:
    unique = UniqueClicks()
    assert unique.first_in_window("v", "CODE", 0.0)
    assert not unique.first_in_window("v", "CODE", 3599.0)
    assert unique.first_in_window("v", "OTHER", 3599.0)
    assert unique.first_in_window("w", "CODE", 3599.0)
    assert unique.first_in_window("v", "CODE", 3599.0 + 3600.0)


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 20_000)), max_size=60))
def test_bounded_memory_never_calls_a_first_click_a_repeat(
    clicks: list[tuple[str, float]],
) -> None:
    """Whatever the memory bound, a click is 'not unique' only if the same visitor really
    clicked that code less than an hour before."""
    small = UniqueClicks(max_entries=2)
    seen: dict[str, float] = {}
    for visitor, t in sorted(clicks, key=lambda c: c[1]):
        first = small.first_in_window(visitor, "C", t)
        last = seen.get(visitor)
        if not first:
            assert last is not None and t - last < 3600
        if first:
            seen[visitor] = t


def test_bots_come_from_crawlerdetect_and_app_agents_can_be_allowed() -> None:
    bots = BotDetector(r"^okhttp/")
    assert bots.is_bot("Googlebot/2.1 (+http://www.google.com/bot.html)")
    assert bots.is_bot("facebookexternalhit/1.1")
    assert bots.is_bot("")
    assert not bots.is_bot("okhttp/4.12.0")
    assert not bots.is_bot(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
    )


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3.0)
    assert [limiter.retry_after("ip", 0.0) for _ in range(4)] == [0, 0, 0, 1]
    assert limiter.retry_after("other", 0.0) == 0
    assert limiter.retry_after("ip", 0.5) == 0  # one token back after half a second
    assert limiter.retry_after("ip", 0.5) >= 1


@given(st.lists(st.floats(0, 100), min_size=1, max_size=200))
def test_the_bucket_never_allows_more_than_burst_plus_rate_times_time(times: list[float]) -> None:
    limiter = RateLimiter(rate_per_s=5.0, burst=10.0)
    times.sort()
    allowed = sum(1 for t in times if limiter.retry_after("ip", t) == 0)
    assert allowed <= 10 + 5.0 * (times[-1] - times[0]) + 1e-9
