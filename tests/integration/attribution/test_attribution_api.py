"""The tracking API in-process against real Postgres and broker: attribution, fraud
decisions, review queue, conversions, refunds, bad input and concurrency."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from services.attribution import pending
from tests.integration.attribution.conftest import Tracking


async def test_a_click_signup_and_conversion_publish_keyed_by_referrer(tracking: Tracking) -> None:
    referrer, _ = await tracking.enroll(variant="b", external_user_id="ana-42")
    click = await tracking.click(referrer)
    signup = await tracking.post("signups", {"customer_id": "c1", "click_id": str(click)})
    assert signup.status_code == 201, signup.text
    body = signup.json()
    assert body["attributed"] is True and body["status"] == "active"
    assert body["referrer_id"] == str(referrer) and body["reason"] == "click"
    conversion = await tracking.post(
        "conversions", {"customer_id": "c1", "order_id": "o1", "amount": 4999, "currency": "EUR"}
    )
    assert conversion.status_code == 201, conversion.text
    assert conversion.json()["sequence"] == 1 and conversion.json()["published"] is True
    [signed] = await tracking.events("referral.signed_up")
    [converted] = await tracking.events("referral.converted")
    assert signed["key"] == converted["key"] == str(referrer)
    assert signed["variant"] == converted["variant"] == "b"
    assert converted["program_version"] == 1 and converted["amount"] == 4999
    assert converted["referee_customer_id"] == "c1" and converted["referrer_id"] == str(referrer)
    # The company's own id of the referrer, for a CRM (docs/crm.md).
    assert signed["referrer_external_user_id"] == converted["referrer_external_user_id"] == "ana-42"


async def test_expired_clicks_are_recorded_not_attributed_and_unknown_ones_wait(
    tracking: Tracking,
) -> None:
    referrer, _ = await tracking.enroll()
    old = await tracking.click(referrer, ago=timedelta(days=91))
    expired = await tracking.post("signups", {"customer_id": "c-expired", "click_id": str(old)})
    assert expired.status_code == 201
    assert expired.json()["attributed"] is False
    assert expired.json()["reason"] == "click_outside_window"
    assert expired.json()["status"] == "unattributed"
    # A click attribution has not received yet: the signup waits for it, and is given up
    # (unattributed) once the limit has passed without it.
    unknown = await tracking.post(
        "signups", {"customer_id": "c-unknown", "click_id": str(uuid.uuid4())}
    )
    assert unknown.status_code == 202
    assert unknown.json()["attributed"] is False and unknown.json()["status"] == "pending"
    await pending.expire_due(tracking.pool, now=datetime.now(UTC) + timedelta(hours=7))
    given_up = (await tracking.get(f"signups/{unknown.json()['signup_id']}")).json()
    assert given_up["status"] == "unattributed" and given_up["reason"] == "click_never_arrived"
    assert await tracking.count("SELECT count(*) FROM signups") == 2
    assert await tracking.events("referral.signed_up") == []


async def test_a_typed_code_attributes_unless_the_program_forbids_it(tracking: Tracking) -> None:
    referrer, code = await tracking.enroll()
    typed = f" {code.lower()} "  # as a person types it
    ok = await tracking.post("signups", {"customer_id": "c1", "referral_code": typed})
    assert ok.json()["reason"] == "code" and ok.json()["referrer_id"] == str(referrer)
    await tracking.publish_program(version=2, attribution={"allow_code_without_click": False})
    refused = await tracking.post("signups", {"customer_id": "c2", "referral_code": code})
    assert refused.status_code == 201
    assert refused.json()["reason"] == "code_without_click_not_allowed"


async def test_an_existing_customer_is_not_referred(tracking: Tracking) -> None:
    referrer, _ = await tracking.enroll()
    click = await tracking.click(referrer)
    response = await tracking.post(
        "signups", {"customer_id": "old", "click_id": str(click), "existing_customer": True}
    )
    assert response.json()["attributed"] is False
    assert response.json()["reason"] == "existing_customer"


async def test_first_click_goes_to_the_earliest_click_of_the_same_visitor(
    tracking: Tracking,
) -> None:
    first, _ = await tracking.enroll()
    last, _ = await tracking.enroll()
    await tracking.publish_program(version=2, attribution={"model": "first_click"})
    await tracking.click(first, ago=timedelta(days=3), visitor_hash="v1")
    named = await tracking.click(last, ago=timedelta(minutes=1), visitor_hash="v1")
    response = await tracking.post("signups", {"customer_id": "c1", "click_id": str(named)})
    assert response.json()["referrer_id"] == str(first)


async def test_self_referral_is_rejected_with_its_rule_readable_back(tracking: Tracking) -> None:
    referrer, code = await tracking.enroll(email="John.Doe@gmail.com")
    response = await tracking.post(
        "signups",
        {"customer_id": "c1", "referral_code": code, "email": "johndoe+x@googlemail.com",
         "ip": "203.0.113.9"},
    )  # fmt: skip
    body = response.json()
    assert body["status"] == "rejected" and body["attributed"] is False
    assert body["reason"] == "self_referral"  # the rule that rejected it
    [rule] = body["rules"]
    assert rule["rule"] == "self_referral" and rule["enforced"] is True
    [event] = await tracking.events("referral.rejected")
    assert event["key"] == str(referrer) and event["rules"][0]["rule"] == "self_referral"
    detail = (await tracking.get(f"referrals/{body['signup_id']}")).json()
    assert detail["decision"]["outcome"] == "reject"
    assert detail["decision"]["rules"][0]["inputs"]["same_email"] is True
    # Nothing personal is stored in clear.
    stored = str(await tracking.pool.fetch("SELECT * FROM signups")) + str(
        await tracking.pool.fetch("SELECT * FROM fraud_decisions")
    )
    assert "johndoe" not in stored.lower() and "203.0.113.9" not in stored
    # A rejected referral's purchases never convert.
    purchase = await tracking.post(
        "conversions", {"customer_id": "c1", "order_id": "o1", "amount": 100, "currency": "USD"}
    )
    assert purchase.json()["qualified"] is False and purchase.json()["published"] is False
    assert await tracking.events("referral.converted") == []


async def test_shadow_rules_are_recorded_but_not_enforced(tracking: Tracking) -> None:
    await tracking.publish_program(
        version=2, fraud={"disposable_email": {"action": "reject", "shadow": True}}
    )
    referrer, code = await tracking.enroll()
    response = await tracking.post(
        "signups", {"customer_id": "c1", "referral_code": code, "email": "x@mailinator.com"}
    )
    body = response.json()
    assert body["status"] == "active" and body["referrer_id"] == str(referrer)
    assert [(r["rule"], r["shadow"], r["enforced"]) for r in body["rules"]] == [
        ("disposable_email", True, False)
    ]


async def test_review_queue_approve_publishes_what_was_held(tracking: Tracking) -> None:
    referrer, code = await tracking.enroll(external_user_id="bo-7")
    flagged = await tracking.post(
        "signups", {"customer_id": "c1", "referral_code": code, "email": "a@mailinator.com"}
    )
    assert flagged.json()["status"] == "flagged"
    [event] = await tracking.events("referral.flagged")
    assert event["key"] == str(referrer) and event["rules"][0]["rule"] == "disposable_email"
    held = await tracking.post(
        "conversions", {"customer_id": "c1", "order_id": "o1", "amount": 500, "currency": "USD"}
    )
    assert held.json()["qualified"] is True and held.json()["published"] is False
    assert await tracking.events("referral.converted") == []
    queue = (await tracking.get("referrals", status="flagged")).json()
    assert [i["referral_id"] for i in queue["items"]] == [flagged.json()["signup_id"]]
    sid = flagged.json()["signup_id"]
    approved = await tracking.post(f"referrals/{sid}/approve", {"note": "looks fine"})
    assert approved.status_code == 200 and approved.json()["status"] == "active"
    assert approved.json()["referrer_id"] == str(referrer)
    [converted] = await tracking.events("referral.converted")
    assert converted["order_id"] == "o1" and converted["key"] == str(referrer)
    [signed] = await tracking.events("referral.signed_up")
    assert signed["referrer_external_user_id"] == converted["referrer_external_user_id"] == "bo-7"
    assert (await tracking.get("referrals", status="flagged")).json()["items"] == []
    again = await tracking.post(f"referrals/{sid}/approve", {})
    assert again.status_code == 409


async def test_review_reject_publishes_rejected_with_the_reviewer_reason(
    tracking: Tracking,
) -> None:
    _, code = await tracking.enroll()
    flagged = await tracking.post(
        "signups", {"customer_id": "c1", "referral_code": code, "email": "a@yopmail.com"}
    )
    sid = flagged.json()["signup_id"]
    rejected = await tracking.post(f"referrals/{sid}/reject", {"note": "ring of accounts"})
    assert rejected.json()["status"] == "rejected"
    [event] = await tracking.events("referral.rejected")
    assert event["rules"] == [
        {"rule": "review", "action": "reject", "shadow": False, "reason": "ring of accounts"}
    ]
    funnel = (await tracking.get("funnel")).json()
    assert funnel["rejections"] == {"review": 1}


async def test_velocity_same_ip_and_too_fast(tracking: Tracking) -> None:
    await tracking.publish_program(
        version=2,
        fraud={
            "velocity": {"action": "flag", "per_referrer_hour": 2},
            "too_fast": {"action": "reject", "shadow": False, "min_seconds": 60},
        },
    )
    _, code = await tracking.enroll(external_user_id="ref-1")
    # The referrer's own signup as a customer reveals their IP and device.
    await tracking.post(
        "signups",
        {"customer_id": "ref-1", "referral_code": code, "ip": "198.51.100.7",
         "device_id": "dev-1", "existing_customer": True},
    )  # fmt: skip
    same_device = await tracking.post(
        "signups", {"customer_id": "c1", "referral_code": code, "device_id": "dev-1"}
    )
    assert [r["rule"] for r in same_device.json()["rules"]] == ["same_ip_or_device"]
    await tracking.post("signups", {"customer_id": "c2", "referral_code": code})
    third = await tracking.post("signups", {"customer_id": "c3", "referral_code": code})
    assert [r["rule"] for r in third.json()["rules"]] == ["velocity"]
    assert third.json()["status"] == "flagged"
    other, _ = await tracking.enroll()
    fast = await tracking.click(other, ago=timedelta(seconds=1))
    too_fast = await tracking.post("signups", {"customer_id": "c4", "click_id": str(fast)})
    assert too_fast.json()["status"] == "rejected"
    assert [r["rule"] for r in too_fast.json()["rules"]] == ["too_fast"]


async def test_a_bot_click_is_rejected_by_default_and_allowed_if_configured(
    tracking: Tracking,
) -> None:
    referrer, _ = await tracking.enroll()
    bot = await tracking.click(referrer, attributable=False)
    rejected = await tracking.post("signups", {"customer_id": "c1", "click_id": str(bot)})
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["rules"][0]["rule"] == "bot_click"
    assert rejected.json()["reason"] == "bot_click"
    await tracking.publish_program(version=2, fraud={"bot_click": {"action": "allow"}})
    allowed = await tracking.post(
        "signups",
        {"customer_id": "c2", "click_id": str(await tracking.click(referrer, attributable=False))},
    )
    assert allowed.json()["status"] == "active" and allowed.json()["attributed"] is True


async def test_qualification_min_amount_days_and_recurring_sequences(tracking: Tracking) -> None:
    await tracking.publish_program(
        version=2,
        attribution={
            "qualification": {"min_amount": {"amount": 1000, "unit": "USD"},
                              "recurring_months": 2}
        },
    )  # fmt: skip
    _, code = await tracking.enroll()
    await tracking.post("signups", {"customer_id": "c1", "referral_code": code})

    async def buy(order: str, amount: int, currency: str = "USD") -> dict:
        r = await tracking.post(
            "conversions",
            {"customer_id": "c1", "order_id": order, "amount": amount, "currency": currency},
        )
        assert r.status_code == 201, r.text
        return r.json()

    assert (await buy("o1", 999))["reason"] == "below_minimum_amount"
    assert (await buy("o2", 5000, "EUR"))["reason"] == "below_minimum_amount"
    assert (await buy("o3", 1000))["sequence"] == 1
    assert (await buy("o4", 2000))["sequence"] == 2
    converted = await tracking.events("referral.converted")
    assert [(e["order_id"], e["sequence"]) for e in converted] == [("o3", 1), ("o4", 2)]


async def test_refunds_partial_then_full(tracking: Tracking) -> None:
    referrer, code = await tracking.enroll()
    await tracking.post("signups", {"customer_id": "c1", "referral_code": code})
    await tracking.post(
        "conversions", {"customer_id": "c1", "order_id": "o1", "amount": 1000, "currency": "USD"}
    )
    partial = await tracking.post("refunds", {"refund_id": "r1", "order_id": "o1", "amount": 300})
    assert partial.status_code == 201 and partial.json()["full"] is False
    replay = await tracking.post("refunds", {"refund_id": "r1", "order_id": "o1", "amount": 300})
    assert replay.status_code == 200
    too_much = await tracking.post("refunds", {"refund_id": "r2", "order_id": "o1", "amount": 701})
    assert too_much.status_code == 422 and too_much.json()["field"] == "amount"
    rest = await tracking.post("refunds", {"refund_id": "r3", "order_id": "o1"})
    assert rest.json()["full"] is True and rest.json()["amount"] == 700
    events = await tracking.events("referral.reversed")
    assert [(e["refunded_amount"], e["full"], e["key"]) for e in events] == [
        (300, False, str(referrer)),
        (700, True, str(referrer)),
    ]


async def test_bad_input_is_a_4xx_naming_the_field_and_stores_nothing(tracking: Tracking) -> None:
    _, code = await tracking.enroll()
    await tracking.post("signups", {"customer_id": "c1", "referral_code": code})
    before = await tracking.count("SELECT count(*) FROM conversions")
    cases = [
        ("conversions", {"customer_id": "nobody", "order_id": "o", "amount": 1, "currency": "USD"},
         422, "customer_id"),
        ("conversions", {"customer_id": "c1", "order_id": "o", "amount": -5, "currency": "USD"},
         422, "amount"),
        ("conversions", {"customer_id": "c1", "order_id": "o", "amount": 10**13,
                         "currency": "USD"}, 422, "amount"),
        ("conversions", {"customer_id": "c1", "order_id": "o", "amount": 1.5, "currency": "USD"},
         422, "amount"),
        ("conversions", {"customer_id": "c1", "order_id": "o", "amount": 1, "currency": "XYZ"},
         422, "currency"),
        ("conversions", {"customer_id": "c1", "order_id": "o", "amount": 1, "currency": "MB"},
         422, "currency"),
        ("refunds", {"refund_id": "r", "order_id": "no-such-order"}, 422, "order_id"),
        ("signups", {"customer_id": "c9", "referral_code": code, "email": "not-an-email"},
         422, "email"),
        ("signups", {"customer_id": "c9", "referral_code": code, "ip": "999.1.1.1"}, 422, "ip"),
    ]  # fmt: skip
    for path, body, status, field in cases:
        response = await tracking.post(path, body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == field, response.json()
    assert await tracking.count("SELECT count(*) FROM conversions") == before
    assert await tracking.count("SELECT count(*) FROM refunds") == 0
    assert await tracking.count("SELECT count(*) FROM signups") == 1


async def test_concurrent_duplicates_make_one_referral_and_one_conversion(
    tracking: Tracking,
) -> None:
    referrer, _ = await tracking.enroll()
    click = str(await tracking.click(referrer))
    signups = await asyncio.gather(
        *[tracking.post("signups", {"customer_id": "c1", "click_id": click}) for _ in range(8)]
    )
    assert sorted(r.status_code for r in signups) == [200] * 7 + [201]
    assert len({r.json()["signup_id"] for r in signups}) == 1
    body = {"customer_id": "c1", "order_id": "o1", "amount": 100, "currency": "USD"}
    keyed = [tracking.post("conversions", body, **{"Idempotency-Key": "k1"}) for _ in range(4)]
    plain = [tracking.post("conversions", body) for _ in range(4)]
    answers = await asyncio.gather(*keyed, *plain)
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    assert len({a.json()["conversion_id"] for a in answers}) == 1
    assert len(await tracking.events("referral.signed_up")) == 1
    assert len(await tracking.events("referral.converted")) == 1
    assert await tracking.count("SELECT count(*) FROM conversions") == 1


async def test_funnel_for_the_program_and_one_participant(tracking: Tracking) -> None:
    a, code_a = await tracking.enroll()
    b, _ = await tracking.enroll()
    for visitor in ("v1", "v1", "v2"):
        await tracking.click(a, visitor_hash=visitor)
    click_b = await tracking.click(b, visitor_hash="v3")
    await tracking.post("signups", {"customer_id": "c1", "referral_code": code_a})
    await tracking.post("signups", {"customer_id": "c2", "click_id": str(click_b)})
    await tracking.post("signups", {"customer_id": "c3", "click_id": str(uuid.uuid4())})
    await tracking.post("signups", {"customer_id": "c4", "click_id": str(uuid.uuid4())})
    await pending.expire_due(tracking.pool, now=datetime.now(UTC) + timedelta(hours=7))
    await tracking.post("signups", {"customer_id": "c5", "click_id": str(uuid.uuid4())})
    await tracking.post(
        "conversions", {"customer_id": "c1", "order_id": "o1", "amount": 100, "currency": "USD"}
    )
    program = (await tracking.get("funnel")).json()
    assert (program["clicks"], program["unique_clicks"], program["signups"]) == (4, 3, 2)
    assert program["conversions"] == 1 and program["pending"] == 1
    assert program["unattributed"] == {"click_never_arrived": 2}
    one = (await tracking.get("funnel", participant_id=str(a))).json()
    assert (one["clicks"], one["unique_clicks"], one["signups"], one["conversions"]) == (
        3, 2, 1, 1)  # fmt: skip
    bad = await tracking.get("funnel", **{"from": "2024-01-01T00:00:00"})
    assert bad.status_code == 422 and bad.json()["field"] == "from"
