"""Stripe events in, on a real database and broker: an endpoint per program with rotating
signing secrets, deliveries signed by the stripe library, events applied once through the
tracking use cases, unmatched ones kept and re-applied, refunds full and partial."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.integration.attribution.conftest import Tracking
from tests.stripe_events import (
    charge_refunded,
    checkout_completed,
    event,
    invoice_paid,
    new_secret,
    signed,
)


async def endpoint(tracking: Tracking, secret: str, **config: Any) -> dict[str, Any]:
    r = await tracking.post("stripe/endpoints", {"secret": secret, **config})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def deliver(
    tracking: Tracking, ep: dict[str, Any], payload: dict[str, Any], secret: str, **sign: Any
) -> httpx.Response:
    body, headers = signed(payload, secret, **sign)
    return await tracking.client.post(ep["url_path"], content=body, headers=headers)


async def referred(tracking: Tracking, customer_id: str, **extra: Any) -> None:
    _, code = await tracking.enroll()
    r = await tracking.post("signups", {"customer_id": customer_id, "referral_code": code, **extra})
    assert r.status_code == 201 and r.json()["attributed"], r.text


async def test_signatures_good_bad_stale_and_rotated(tracking: Tracking) -> None:
    old, new = new_secret(), new_secret()
    ep = await endpoint(tracking, old)
    assert ep["url_path"] == f"/v1/stripe/{ep['id']}/events"
    [shown] = ep["secrets"]
    assert old not in str(ep) and len(shown["fingerprint"]) == 16

    ok = await deliver(tracking, ep, event("customer.created", {"id": "cus_1"}), old)
    assert ok.status_code == 200 and ok.json()["status"] == "ignored", ok.text

    # A stranger's signature, a stale one, none at all: 400, nothing stored.
    bad = await deliver(tracking, ep, event("customer.created", {"id": "x"}), new)
    assert bad.status_code == 400 and bad.json()["type"].endswith("/bad-stripe-signature")
    assert bad.headers["content-type"].startswith("application/problem+json")
    stale = await deliver(
        tracking, ep, event("customer.created", {"id": "y"}), old, timestamp=int(time.time()) - 600
    )
    assert stale.status_code == 400 and stale.json()["type"].endswith("/stale-stripe-signature")
    assert stale.json()["field"] == "Stripe-Signature"
    unsigned = await tracking.client.post(ep["url_path"], content=b"{}")
    assert unsigned.status_code == 400
    assert await tracking.count("SELECT count(*) FROM stripe_events") == 1

    # Rotation: add the new secret, both verify; a third is refused; retire the old one.
    both = await tracking.post(f"stripe/endpoints/{ep['id']}/secrets", {"secret": new})
    assert both.status_code == 200 and len(both.json()["secrets"]) == 2, both.text
    third = await tracking.post(f"stripe/endpoints/{ep['id']}/secrets", {"secret": new_secret()})
    assert third.status_code == 409 and third.json()["field"] == "secret"
    for secret in (old, new):
        r = await deliver(tracking, ep, event("customer.updated", {"id": "cus_1"}), secret)
        assert r.status_code == 200, r.text
    retired = await tracking.client.delete(
        f"/v1/stripe/endpoints/{ep['id']}/secrets/{shown['fingerprint']}", headers=tracking.auth
    )
    assert retired.status_code == 200 and len(retired.json()["secrets"]) == 1
    late_old = await deliver(tracking, ep, event("customer.updated", {"id": "cus_2"}), old)
    assert late_old.status_code == 400
    assert (await deliver(tracking, ep, event("ping", {}), new)).status_code == 200

    # Secrets are never shown again, and another program's key does not see the endpoint.
    listed = await tracking.get("stripe/endpoints")
    assert old not in listed.text and new not in listed.text
    other = Tracking(tracking.client, tracking.pool, tracking.runtime)
    await other.issue_key()
    assert (await other.get(f"stripe/endpoints/{ep['id']}")).status_code == 404


async def test_invoices_convert_once_through_the_tracking_rules(tracking: Tracking) -> None:
    await tracking.publish_program(
        version=2, attribution={"qualification": {"recurring_months": 12}}
    )
    secret = new_secret()
    ep = await endpoint(tracking, secret)
    await referred(tracking, "c-1", billing_customer_id="cus_A")

    first = invoice_paid(customer="cus_A", amount=4999, billing_reason="subscription_create")
    r = await deliver(tracking, ep, first, secret)
    assert r.status_code == 200 and r.json()["status"] == "applied", r.text
    invoice_id = first["data"]["object"]["id"]
    assert r.json()["order_id"] == invoice_id
    # The replay changes nothing and answers the first outcome.
    again = await deliver(tracking, ep, first, secret)
    assert again.status_code == 200 and again.json()["replay"] is True
    assert again.json()["status"] == "applied"
    # Stripe may deliver the same event twice at once: it is applied once.
    renewal = invoice_paid(customer="cus_A", amount=4999, billing_reason="subscription_cycle")
    answers = await asyncio.gather(*(deliver(tracking, ep, renewal, secret) for _ in range(3)))
    assert sorted(a.json()["replay"] for a in answers) == [False, True, True]
    assert {a.json()["status"] for a in answers} == {"applied"}

    converted = await tracking.events("referral.converted")
    assert [(e["order_id"], e["sequence"]) for e in converted] == [
        (invoice_id, 1),
        (renewal["data"]["object"]["id"], 2),
    ]
    assert converted[0]["amount"] == 4999 and converted[0]["currency"] == "USD"
    assert await tracking.count("SELECT count(*) FROM conversions") == 2

    # A customer the company knows but nobody referred: ignored, nothing changes.
    r = await tracking.post("signups", {"customer_id": "plain", "referral_code": "NOPE1234"})
    assert r.status_code in (201, 202)
    await tracking.pool.execute(
        "UPDATE signups SET status = 'unattributed', reason = 'unknown_code' "
        "WHERE customer_id = 'plain'"
    )
    plain = invoice_paid(metadata={"customer_id": "plain"})
    out = (await deliver(tracking, ep, plain, secret)).json()
    assert (out["status"], out["reason"]) == ("ignored", "customer_not_referred")
    assert await tracking.count("SELECT count(*) FROM conversions") == 2


async def test_an_unmatched_event_is_kept_listed_and_reapplied(tracking: Tracking) -> None:
    secret = new_secret()
    ep = await endpoint(tracking, secret)
    sale = checkout_completed(client_reference_id="c-late")
    r = await deliver(tracking, ep, sale, secret)
    assert r.status_code == 200 and r.json()["status"] == "unmatched", r.text
    assert r.json()["reason"] == "unknown_customer"

    listed = await tracking.get(f"stripe/endpoints/{ep['id']}/events", status="unmatched")
    [item] = listed.json()["items"]
    assert item["event_id"] == sale["id"] and item["type"] == "checkout.session.completed"
    assert (
        await tracking.get(f"stripe/endpoints/{ep['id']}/events", status="bogus")
    ).status_code == 422

    # The mapping is fixed (the signup arrives), then the event is applied again.
    await referred(tracking, "c-late")
    path = f"stripe/endpoints/{ep['id']}/events/{sale['id']}/reapply"
    applied = await tracking.post(path, {})
    assert applied.status_code == 200 and applied.json()["status"] == "applied", applied.text
    assert applied.json()["attempts"] == 2
    [converted] = await tracking.events("referral.converted")
    assert converted["order_id"] == sale["data"]["object"]["id"]
    assert converted["amount"] == 2500 and converted["currency"] == "EUR"
    assert (
        await tracking.pool.fetchval(
            "SELECT payload FROM stripe_events WHERE event_id = $1", sale["id"]
        )
        is None
    )
    final = await tracking.post(path, {})
    assert final.status_code == 409 and final.json()["field"] == "event_id"
    replay = await deliver(tracking, ep, sale, secret)
    assert replay.json()["replay"] and len(await tracking.events("referral.converted")) == 1


async def test_partial_then_full_refund_of_a_charge(tracking: Tracking) -> None:
    secret = new_secret()
    ep = await endpoint(tracking, secret, metadata_key="user")
    await referred(tracking, "c-2")
    paid = invoice_paid(metadata={"user": "c-2"}, amount=10_000)
    assert (await deliver(tracking, ep, paid, secret)).json()["status"] == "applied"

    partial = charge_refunded(paid, amount_refunded=3000)
    out = (await deliver(tracking, ep, partial, secret)).json()
    assert (out["status"], out["reason"]) == ("applied", "partial_refund"), out
    # An older running total arriving late adds nothing.
    stale_total = charge_refunded(paid, amount_refunded=2000)
    assert (await deliver(tracking, ep, stale_total, secret)).json()["reason"] == (
        "refund_counted_already"
    )
    full = charge_refunded(paid, amount_refunded=10_000)
    out = (await deliver(tracking, ep, full, secret)).json()
    assert (out["status"], out["reason"]) == ("applied", "full_refund"), out
    assert (await deliver(tracking, ep, full, secret)).json()["replay"] is True

    reversed_ = await tracking.events("referral.reversed")
    assert [(e["refunded_amount"], e["full"]) for e in reversed_] == [(3000, False), (7000, True)]
    refunded = await tracking.pool.fetchval(
        "SELECT refunded_amount FROM conversions WHERE order_id = $1", paid["data"]["object"]["id"]
    )
    assert refunded == 10_000

    # A refund of a charge the platform never converted is kept as unmatched.
    unknown = charge_refunded(invoice_paid(), amount_refunded=100)
    out = (await deliver(tracking, ep, unknown, secret)).json()
    assert (out["status"], out["reason"]) == ("unmatched", "unknown_charge")
