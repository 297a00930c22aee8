"""Stripe events in, through the real services: a signed ``invoice.paid`` of a referred
customer gives the same conversion and rewards as the tracking API does, ``charge.refunded``
reverses them, and a replayed event changes nothing."""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any

import asyncpg
import httpx

from devstack.journey import Urls, eventually
from devstack.stack import Stack, database_url_for
from tests.e2e.test_rewards_scenarios import (
    Program,
    _ok,
    create_program,
    enrol,
    participant_view,
    refer,
    wait_rows,
)
from tests.stripe_events import charge_refunded, invoice_paid, new_secret, signed

REWARD = ("side", "rule", "amount", "unit", "status", "program_version")


async def _signed_up_with_billing_id(
    http: httpx.AsyncClient, program: Program, code: str, billing_id: str
) -> str:
    customer_id = f"cust-{uuid.uuid4().hex[:10]}"
    body = _ok(
        await http.post(
            f"{program.urls.attribution}/v1/signups",
            headers=program.server,
            json={
                "customer_id": customer_id,
                "referral_code": code,
                "billing_customer_id": billing_id,
            },
        ),
        201,
        202,
    )

    async def decided() -> Any:
        url = f"{program.urls.attribution}/v1/signups/{body['signup_id']}"
        state = _ok(await http.get(url, headers=program.server), 200)
        return state if state["status"] != "pending" else None

    state = body if body["status"] != "pending" else await eventually(decided, timeout_s=30)
    assert state["attributed"], state
    return customer_id


async def _deliver(
    http: httpx.AsyncClient,
    urls: Urls,
    endpoint: dict[str, Any],
    event: dict[str, Any],
    secret: str,
) -> dict[str, Any]:
    body, headers = signed(event, secret)
    return _ok(
        await http.post(f"{urls.attribution}{endpoint['url_path']}", content=body, headers=headers),
        200,
    )  # type: ignore[no-any-return]


async def _attribution_events(stack: Stack, order_id: str) -> list[str]:
    """Topics of the events attribution wrote about this order."""
    conn = await asyncpg.connect(database_url_for(stack.server_url, "attribution"))
    try:
        rows = await conn.fetch(
            "SELECT topic, payload FROM outbox WHERE topic LIKE 'referral.%' ORDER BY id"
        )
    finally:
        await conn.close()
    return [r["topic"] for r in rows if json.loads(bytes(r["payload"])).get("order_id") == order_id]


async def test_stripe_invoice_converts_and_its_refund_reverses_like_the_tracking_api(
    stack: Stack, urls: Urls
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        program = await create_program(
            http, urls, stack.admin_api_key, {"referrer": {"amount": 2000, "unit": "USD"}}
        )
        participant = await enrol(http, program)
        # The same referrer's referral tracked through the tracking API, for comparison.
        tracked = await refer(http, program, participant["code"])

        secret = new_secret()
        endpoint = _ok(
            await http.post(
                f"{urls.attribution}/v1/stripe/endpoints",
                headers=program.server,
                json={"secret": secret},
            ),
            201,
        )
        customer_id = await _signed_up_with_billing_id(
            http, program, participant["code"], "cus_e2e"
        )
        # Paid after the program started: on a fast machine the program is younger than the
        # helper's default of five seconds ago (refused as before-program-start).
        paid = invoice_paid(
            customer="cus_e2e", amount=4999, currency="usd", paid_at=math.ceil(time.time())
        )
        order_id = paid["data"]["object"]["id"]
        out = await _deliver(http, urls, endpoint, paid, secret)
        assert (out["status"], out["order_id"]) == ("applied", order_id), out["reason"]

        rows = await wait_rows(stack, program.id, lambda rows: len(rows) == 2)
        by_conversion = {str(r["conversion_id"]): r for r in rows}
        via_api = by_conversion.pop(tracked.conversion["conversion_id"])
        [via_stripe] = by_conversion.values()
        assert [via_stripe[k] for k in REWARD] == [via_api[k] for k in REWARD]
        assert via_stripe["status"] == "issued"
        referral = _ok(
            await http.get(
                f"{urls.attribution}/v1/referrals",
                headers=program.server,
                params={"status": "active"},
            )
        )
        [stripe_referral] = [r for r in referral["items"] if r["customer_id"] == customer_id]
        [conversion] = stripe_referral["conversions"]
        assert (conversion["order_id"], conversion["amount"], conversion["currency"]) == (
            order_id,
            4999,
            "USD",
        )
        assert conversion["qualified"] and conversion["published"]

        refunded = charge_refunded(paid, amount_refunded=4999)
        out = await _deliver(http, urls, endpoint, refunded, secret)
        assert (out["status"], out["reason"]) == ("applied", "full_refund"), out
        rows = await wait_rows(
            stack,
            program.id,
            lambda rows: sorted(r["status"] for r in rows) == ["issued", "reversed"],
        )
        status = {str(r["conversion_id"]): r["status"] for r in rows}
        assert status[tracked.conversion["conversion_id"]] == "issued"
        view = await participant_view(http, program, participant["id"])
        assert view["balances"] == {"USD": 2000}

        # Replays (Stripe retries, or a resend from its dashboard) change nothing.
        events_before = await _attribution_events(stack, order_id)
        assert events_before == ["referral.converted", "referral.reversed"]
        for event in (paid, refunded):
            again = await _deliver(http, urls, endpoint, event, secret)
            assert again["replay"] and again["status"] == "applied", again
        assert await _attribution_events(stack, order_id) == events_before
        rows_after = await wait_rows(stack, program.id, lambda rows: len(rows) == 2)
        assert sorted(r["status"] for r in rows_after) == ["issued", "reversed"]
