"""Pending attribution against real Postgres and broker: a signup naming a click or a code
attribution has not heard of yet waits (202), is decided when the click or the enrolment
arrives (with the rules in force at the signup's own time), is given up after the limit,
answers resends with its current state, holds its purchases and refunds meanwhile, and
publishes its referral event once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.attribution import pending
from services.attribution.repository.inputs import insert_clicks
from tests.factories import link_clicked, participant_enrolled
from tests.integration.attribution.conftest import Tracking, apply


async def _statuses(tracking: Tracking) -> list[tuple[str, str]]:
    """(status, waiting_for) of the referral.pending events; the resolution is the one with
    ``resolved_at``."""
    events = await tracking.events("referral.pending")
    assert all((e["status"] == "pending") == (e["resolved_at"] is None) for e in events)
    return [(e["status"], e["waiting_for"]) for e in events]


async def test_a_signup_before_its_click_waits_and_is_decided_when_the_click_arrives(
    tracking: Tracking,
) -> None:
    referrer, _ = await tracking.enroll(variant="b")
    # Clicked 91 days ago, signed up 2 days ago: inside the 90-day window measured to the
    # signup's own time, though not to now.
    occurred = datetime.now(UTC) - timedelta(days=2)
    click = link_clicked(
        tracking.program_id, referrer, clicked_at=datetime.now(UTC) - timedelta(days=91)
    )
    body = {"customer_id": "c1", "click_id": str(click.click_id),
            "occurred_at": occurred.isoformat()}  # fmt: skip
    first = await tracking.post("signups", body)
    assert first.status_code == 202, first.text
    waiting = first.json()
    assert waiting["status"] == "pending" and waiting["attributed"] is False
    assert waiting["reason"] == "waiting_for_click" and waiting["pending_until"]
    assert first.headers["Location"] == f"/v1/signups/{waiting['signup_id']}"
    assert datetime.fromisoformat(waiting["occurred_at"]) == occurred
    polled = await tracking.client.get(first.headers["Location"], headers=tracking.auth)
    assert polled.status_code == 200 and polled.json()["status"] == "pending"
    resent = await tracking.post("signups", body)
    assert resent.status_code == 200 and resent.json()["status"] == "pending"
    listed = (await tracking.get("referrals", status="pending")).json()["items"]
    assert [i["referral_id"] for i in listed] == [waiting["signup_id"]]
    assert await tracking.events("referral.signed_up") == []

    await apply(tracking.pool, click)

    decided = (await tracking.client.get(first.headers["Location"], headers=tracking.auth)).json()
    assert decided["status"] == "active" and decided["referrer_id"] == str(referrer)
    assert decided["reason"] == "click" and decided["decided_at"] is not None
    assert decided["pending_until"] is None
    [signed] = await tracking.events("referral.signed_up")
    assert signed["key"] == str(referrer) and signed["variant"] == "b"
    assert datetime.fromisoformat(signed["signed_up_at"]) == occurred
    assert await _statuses(tracking) == [("pending", "click"), ("active", "click")]
    again = await tracking.post("signups", body)
    assert again.status_code == 200 and again.json()["status"] == "active"


async def test_a_late_click_outside_the_window_of_the_signup_time_is_not_attributed(
    tracking: Tracking,
) -> None:
    referrer, _ = await tracking.enroll()
    # The click comes after the signup's own time: measured to the signup, not to now.
    occurred = datetime.now(UTC) - timedelta(hours=1)
    click = link_clicked(tracking.program_id, referrer, clicked_at=datetime.now(UTC))
    body = {"customer_id": "c1", "click_id": str(click.click_id),
            "occurred_at": occurred.isoformat()}  # fmt: skip
    assert (await tracking.post("signups", body)).status_code == 202
    await apply(tracking.pool, click)
    now = (await tracking.post("signups", body)).json()
    assert now["status"] == "unattributed" and now["reason"] == "click_after_signup"
    assert await tracking.events("referral.signed_up") == []
    assert await _statuses(tracking) == [("pending", "click"), ("unattributed", "click")]


async def test_a_typed_code_waits_for_the_enrolment_and_meets_the_same_fraud_rules(
    tracking: Tracking,
) -> None:
    enrolment = participant_enrolled(tracking.program_id, email="Ann@example.com")
    fine = await tracking.post(
        "signups", {"customer_id": "c1", "referral_code": enrolment.code.lower()}
    )
    selfish = await tracking.post(
        "signups",
        {"customer_id": "c2", "referral_code": enrolment.code, "email": "ann@example.com"},
    )
    assert fine.status_code == selfish.status_code == 202
    assert fine.json()["reason"] == "waiting_for_code"

    await apply(tracking.pool, enrolment)

    one = (await tracking.get(f"signups/{fine.json()['signup_id']}")).json()
    two = (await tracking.get(f"signups/{selfish.json()['signup_id']}")).json()
    assert one["status"] == "active" and one["referrer_id"] == str(enrolment.participant_id)
    assert two["status"] == "rejected" and two["rules"][0]["rule"] == "self_referral"
    assert len(await tracking.events("referral.signed_up")) == 1
    assert len(await tracking.events("referral.rejected")) == 1


async def test_a_pending_signup_is_given_up_after_the_limit_and_stays_so(
    tracking: Tracking,
) -> None:
    referrer, _ = await tracking.enroll()
    click = link_clicked(tracking.program_id, referrer)
    for customer, source in [
        ("c-click", {"click_id": str(click.click_id)}),
        ("c-code", {"referral_code": "NOSUCHCODE"}),
    ]:
        response = await tracking.post("signups", {"customer_id": customer, **source})
        assert response.status_code == 202
    # Not due yet: nothing happens.
    assert await pending.expire_due(tracking.pool) == 0
    later = datetime.now(UTC) + timedelta(hours=6, minutes=1)
    assert await pending.expire_due(tracking.pool, now=later) == 2
    by_customer = {
        r["customer_id"]: r["reason"]
        for r in await tracking.pool.fetch("SELECT customer_id, reason FROM signups")
    }
    assert by_customer == {"c-click": "click_never_arrived", "c-code": "code_never_arrived"}
    # The click that finally comes changes nothing: decided once.
    await apply(tracking.pool, click)
    resend = {"customer_id": "c-click", "click_id": str(click.click_id)}
    gone = await tracking.post("signups", resend)
    assert gone.status_code == 200 and gone.json()["status"] == "unattributed"
    assert await tracking.events("referral.signed_up") == []
    assert sorted(await _statuses(tracking)) == [
        ("pending", "click"), ("pending", "code"), ("unattributed", "click"),
        ("unattributed", "code")]  # fmt: skip
    funnel = (await tracking.get("funnel")).json()
    assert funnel["pending"] == 0
    assert funnel["unattributed"] == {"click_never_arrived": 1, "code_never_arrived": 1}


async def test_purchases_and_refunds_of_a_pending_signup_are_applied_in_order_once_decided(
    tracking: Tracking,
) -> None:
    referrer, _ = await tracking.enroll()
    click = link_clicked(tracking.program_id, referrer)
    await tracking.post("signups", {"customer_id": "c1", "click_id": str(click.click_id)})
    purchase = {"customer_id": "c1", "order_id": "o1", "amount": 5000, "currency": "USD"}
    held = await tracking.post("conversions", purchase)
    assert held.status_code == 202, held.text
    assert held.json()["status"] == "pending" and held.json()["kind"] == "conversion"
    assert (await tracking.post("conversions", purchase)).status_code == 202  # a resend
    refund = {"refund_id": "r1", "order_id": "o1", "amount": 2000}
    held_refund = await tracking.post("refunds", refund)
    assert held_refund.status_code == 202 and held_refund.json()["refund_id"] == "r1"
    assert (await tracking.get("funnel")).json()["pending"] == 1
    assert await tracking.events("referral.converted") == []

    await apply(tracking.pool, click)

    [converted] = await tracking.events("referral.converted")
    [reversed_] = await tracking.events("referral.reversed")
    assert converted["key"] == reversed_["key"] == str(referrer)
    assert converted["amount"] == 5000 and reversed_["refunded_amount"] == 2000
    assert reversed_["full"] is False
    outcomes = await tracking.pool.fetch("SELECT kind, outcome FROM held_tracking ORDER BY id")
    assert [(r["kind"], r["outcome"]) for r in outcomes] == [
        ("conversion", "applied (201)"), ("refund", "applied (201)")]  # fmt: skip
    # Once decided, the same calls answer as usual.
    assert (await tracking.post("conversions", purchase)).status_code == 200
    assert (await tracking.post("refunds", refund)).status_code == 200


async def test_purchases_of_a_signup_given_up_are_recorded_as_refused(tracking: Tracking) -> None:
    await tracking.post("signups", {"customer_id": "c1", "referral_code": "NOSUCHCODE"})
    purchase = {"customer_id": "c1", "order_id": "o1", "amount": 5000, "currency": "USD"}
    assert (await tracking.post("conversions", purchase)).status_code == 202
    await pending.expire_due(tracking.pool, now=datetime.now(UTC) + timedelta(days=1))
    [row] = await tracking.pool.fetch("SELECT outcome FROM held_tracking")
    assert row["outcome"] == "refused: customer-not-referred"
    after = await tracking.post("conversions", purchase)
    assert after.status_code == 422 and after.json()["field"] == "customer_id"


async def test_a_click_stored_while_the_signup_was_recorded_is_found_by_the_sweep(
    tracking: Tracking,
) -> None:
    referrer, _ = await tracking.enroll()
    click = link_clicked(tracking.program_id, referrer)
    await tracking.post("signups", {"customer_id": "c1", "click_id": str(click.click_id)})
    # The click lands without deciding anything (as when both transactions ran at once).
    async with tracking.pool.acquire() as conn:
        await insert_clicks(conn, [(click, None)])
    assert await pending.sweep_arrived(tracking.pool) == 1
    assert await pending.sweep_arrived(tracking.pool) == 0
    assert len(await tracking.events("referral.signed_up")) == 1
    # A second delivery of the click (a replay by the gateway, another event id) finds
    # nothing pending: the referral event is not written twice.
    await apply(tracking.pool, click)
    assert len(await tracking.events("referral.signed_up")) == 1
    assert len(await tracking.events("referral.pending")) == 2


async def test_occurred_at_is_bounded_and_shown(tracking: Tracking) -> None:
    _, code = await tracking.enroll()
    now = datetime.now(UTC)
    for when in (now + timedelta(minutes=10), now - timedelta(days=31), "2026-01-01T00:00:00"):
        stamp = when if isinstance(when, str) else when.isoformat()
        refused = await tracking.post(
            "signups", {"customer_id": "c1", "referral_code": code, "occurred_at": stamp}
        )
        assert refused.status_code == 422, stamp
        assert refused.json()["field"] == "occurred_at"
    skewed = now + timedelta(minutes=2)  # a fast clock is tolerated
    ok = await tracking.post(
        "signups", {"customer_id": "c1", "referral_code": code, "occurred_at": skewed.isoformat()}
    )
    assert ok.status_code == 201 and ok.json()["status"] == "active"
    assert datetime.fromisoformat(ok.json()["occurred_at"]) == skewed
    assert datetime.fromisoformat(ok.json()["received_at"]) <= skewed
    plain = (await tracking.post("signups", {"customer_id": "c2", "referral_code": code})).json()
    assert plain["occurred_at"] == plain["received_at"]
    missing = await tracking.get(f"signups/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["field"] == "signup_id"


async def test_the_version_in_force_at_the_signup_time_decides(tracking: Tracking) -> None:
    # v2 forbids typed codes from one day ago; a signup that happened before that is
    # judged under v1, even though it is decided now.
    await tracking.publish_program(
        version=2,
        effective_from=datetime.now(UTC) - timedelta(days=1),
        attribution={"allow_code_without_click": False},
    )
    enrolment = participant_enrolled(tracking.program_id)
    early = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    waiting = await tracking.post(
        "signups", {"customer_id": "c1", "referral_code": enrolment.code, "occurred_at": early}
    )
    assert waiting.status_code == 202
    refused = await tracking.post("signups", {"customer_id": "c2", "referral_code": enrolment.code})
    assert refused.json()["reason"] == "code_without_click_not_allowed"
    await apply(tracking.pool, enrolment)
    decided = (await tracking.get(f"signups/{waiting.json()['signup_id']}")).json()
    assert decided["status"] == "active" and decided["reason"] == "code"
    version = "SELECT program_version FROM signups WHERE customer_id = 'c1'"
    assert await tracking.count(version) == 1
