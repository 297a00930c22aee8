"""Purchases and refunds reported after they happened (``occurred_at``): the version in force
then prices them, qualification periods are measured from it, both times are stored, shown
and published, and times out of bounds are refused naming the field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.attribution.conftest import Tracking

DAY = timedelta(days=1)


async def signed_up(tracking: Tracking, customer_id: str, code: str, ago: timedelta) -> None:
    """A signup made ``ago`` (recorded now, then dated back as if it had arrived on time)."""
    r = await tracking.post("signups", {"customer_id": customer_id, "referral_code": code})
    assert r.status_code == 201 and r.json()["attributed"], r.text
    await tracking.pool.execute(
        "UPDATE signups SET signed_up_at = $2 WHERE customer_id = $1",
        customer_id,
        datetime.now(UTC) - ago,
    )


async def buy(tracking: Tracking, customer_id: str, order_id: str, **extra: Any) -> Any:
    body = {"customer_id": customer_id, "order_id": order_id, "amount": 4999, "currency": "USD"}
    return await tracking.post("conversions", {**body, **extra})


async def test_a_late_purchase_keeps_the_version_in_force_when_it_happened(
    tracking: Tracking,
) -> None:
    now = datetime.now(UTC)
    # v1 since a year ago (the fixture), v2 from 10 days ago, v3 from 2 days ago.
    await tracking.publish_program(version=2, effective_from=now - 10 * DAY)
    await tracking.publish_program(version=3, effective_from=now - 2 * DAY)
    _, code = await tracking.enroll()
    for customer in ("c1", "c2", "c3"):
        await signed_up(tracking, customer, code, 20 * DAY)

    happened = now - 15 * DAY
    late = await buy(tracking, "c1", "o1", occurred_at=happened.isoformat())
    assert late.status_code == 201, late.text
    out = late.json()
    assert out["program_version"] == 1 and out["published"] is True
    assert datetime.fromisoformat(out["occurred_at"]) == happened
    received = datetime.fromisoformat(out["received_at"])
    assert received >= now and received - now < timedelta(minutes=1)
    v2 = await buy(tracking, "c2", "o2", occurred_at=(now - 5 * DAY).isoformat())
    assert v2.json()["program_version"] == 2
    on_time = await buy(tracking, "c3", "o3")
    assert on_time.json()["program_version"] == 3
    assert on_time.json()["occurred_at"] == on_time.json()["received_at"]

    # The event says when it happened (which prices it) and when it arrived.
    events = {e["order_id"]: e for e in await tracking.events("referral.converted")}
    assert [events[o]["program_version"] for o in ("o1", "o2", "o3")] == [1, 2, 3]
    assert datetime.fromisoformat(events["o1"]["converted_at"]) == happened
    assert datetime.fromisoformat(events["o1"]["received_at"]) == received
    # The referral shows both times; the same order again answers the first result.
    again = await buy(tracking, "c1", "o1")
    assert again.status_code == 200 and again.json() == out
    referral = await tracking.get(f"referrals/{out['referral_id']}")
    [summary] = referral.json()["conversions"]
    assert datetime.fromisoformat(summary["converted_at"]) == happened
    assert datetime.fromisoformat(summary["received_at"]) == received
    assert summary["program_version"] == 1


async def test_the_qualifying_period_is_measured_at_occurred_at(tracking: Tracking) -> None:
    await tracking.publish_program(
        version=2,
        effective_from=datetime.now(UTC) - 100 * DAY,
        attribution={"qualification": {"within_days": 7}},
    )
    _, code = await tracking.enroll()
    await signed_up(tracking, "c1", code, 30 * DAY)
    # Received 30 days after the signup: too late, if it had happened now.
    now_bought = await buy(tracking, "c1", "o-now")
    assert now_bought.json()["reason"] == "outside_qualifying_days"
    # It happened 5 days after the signup: it qualifies, whenever it arrives.
    happened = datetime.now(UTC) - 25 * DAY
    late = await buy(tracking, "c1", "o-late", occurred_at=happened.isoformat())
    assert late.json()["qualified"] is True and late.json()["reason"] == "first_purchase"
    assert late.json()["program_version"] == 2


async def test_times_out_of_bounds_are_refused_naming_occurred_at(tracking: Tracking) -> None:
    _, code = await tracking.enroll()
    await signed_up(tracking, "c1", code, 2 * DAY)
    now = datetime.now(UTC)
    before = await tracking.count("SELECT count(*) FROM conversions")
    cases = [
        (now + timedelta(minutes=10), "occurred-in-the-future"),
        (now - 91 * DAY, "occurred-too-long-ago"),
        (now - 3 * DAY, "purchase-before-signup"),
    ]
    for at, problem in cases:
        r = await buy(tracking, "c1", f"o-{problem}", occurred_at=at.isoformat())
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "occurred_at" and r.json()["type"].endswith(problem), r.text
    naive = await buy(tracking, "c1", "o-naive", occurred_at="2026-01-01T10:00:00")
    assert naive.status_code == 422 and naive.json()["field"] == "occurred_at"
    assert await tracking.count("SELECT count(*) FROM conversions") == before
    # A little ahead is clock skew: accepted.
    skewed = await buy(
        tracking, "c1", "o-skew", occurred_at=(now + timedelta(minutes=2)).isoformat()
    )
    assert skewed.status_code == 201, skewed.text


async def test_a_purchase_before_the_program_started_is_refused(tracking: Tracking) -> None:
    # Another program, whose only version took effect yesterday.
    tracking.program_id = uuid.uuid4()
    await tracking.publish_program(effective_from=datetime.now(UTC) - DAY)
    await tracking.issue_key()
    _, code = await tracking.enroll()
    await signed_up(tracking, "c1", code, 3 * DAY)
    r = await buy(tracking, "c1", "o1", occurred_at=(datetime.now(UTC) - 2 * DAY).isoformat())
    assert r.status_code == 422 and r.json()["field"] == "occurred_at", r.text
    assert r.json()["type"].endswith("before-program-start")


async def test_a_refund_says_when_it_happened(tracking: Tracking) -> None:
    referrer, code = await tracking.enroll()
    await signed_up(tracking, "c1", code, 10 * DAY)
    bought_at = datetime.now(UTC) - 8 * DAY
    assert (await buy(tracking, "c1", "o1", occurred_at=bought_at.isoformat())).status_code == 201

    too_early = await tracking.post(
        "refunds",
        {"refund_id": "r0", "order_id": "o1", "occurred_at": (bought_at - DAY).isoformat()},
    )
    assert too_early.status_code == 422 and too_early.json()["field"] == "occurred_at"
    assert too_early.json()["type"].endswith("refund-before-purchase")
    future = await tracking.post(
        "refunds",
        {
            "refund_id": "r0",
            "order_id": "o1",
            "occurred_at": (datetime.now(UTC) + DAY).isoformat(),
        },
    )
    assert future.status_code == 422 and future.json()["field"] == "occurred_at"

    refunded_at = bought_at + 2 * DAY
    r = await tracking.post(
        "refunds", {"refund_id": "r1", "order_id": "o1", "occurred_at": refunded_at.isoformat()}
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["full"] is True and datetime.fromisoformat(out["occurred_at"]) == refunded_at
    received = datetime.fromisoformat(out["received_at"])
    assert received > refunded_at
    [event] = await tracking.events("referral.reversed")
    assert event["key"] == str(referrer)
    assert datetime.fromisoformat(event["reversed_at"]) == refunded_at
    assert datetime.fromisoformat(event["received_at"]) == received
    replay = await tracking.post("refunds", {"refund_id": "r1", "order_id": "o1"})
    assert replay.status_code == 200 and replay.json() == out
