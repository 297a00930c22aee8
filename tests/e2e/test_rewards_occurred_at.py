"""Events priced when they happened, and milestones taken back by refunds, through the real
services: the PayPal late purchase ($20 → $10 → $5, a v1 purchase reported after v3 gets
$20 and records version 1) and a refund through attribution that takes back a milestone
still on hold (the default policy)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from devstack.journey import Urls, eventually
from devstack.stack import Stack
from tests.e2e.test_rewards_scenarios import (
    Program,
    _ok,
    _signed_up,
    create_program,
    enrol,
    ledger_unbalanced,
    participant_view,
    publish_version,
    refer_many,
    refund,
    version_arrived,
    wait_rows,
)


def usd(amount: int) -> dict[str, Any]:
    return {
        "referrer": {"amount": amount, "unit": "USD"},
        "referee": {"amount": amount, "unit": "USD"},
    }


async def buy(
    http: httpx.AsyncClient, program: Program, customer_id: str, **extra: Any
) -> dict[str, Any]:
    order_id = f"order-{uuid.uuid4().hex[:10]}"
    body = {"customer_id": customer_id, "order_id": order_id, "amount": 4999, "currency": "USD"}
    return _ok(  # type: ignore[no-any-return]
        await http.post(
            f"{program.urls.attribution}/v1/conversions",
            headers=program.server,
            json={**body, **extra},
        )
    )


async def test_paypal_a_v1_purchase_reported_after_v3_gets_v1s_reward(
    stack: Stack, urls: Urls
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        program = await create_program(http, urls, stack.admin_api_key, usd(2000))
        participant = await enrol(http, program)
        code = participant["code"]
        early = await eventually(lambda: _signed_up(http, program, code), timeout_s=30)
        bought_at = datetime.now(UTC)  # the friend buys on the $20 day...
        assert await publish_version(http, program, usd(1000), datetime.now(UTC)) == 2
        assert await publish_version(http, program, usd(500), datetime.now(UTC)) == 3
        await version_arrived(stack, program, 3)
        on_time = await eventually(lambda: _signed_up(http, program, code), timeout_s=30)
        now = await buy(http, program, on_time)
        assert now["program_version"] == 3, now
        # ... and the company's billing system reports it only now, after v3.
        late = await buy(http, program, early, occurred_at=bought_at.isoformat())
        assert late["program_version"] == 1 and late["published"], late
        assert datetime.fromisoformat(late["occurred_at"]) == bought_at
        assert datetime.fromisoformat(late["received_at"]) > bought_at
        rows = await wait_rows(stack, program.id, lambda rows: len(rows) == 4)
        view = await participant_view(http, program, participant["id"])

    priced = {
        (str(r["conversion_id"]), r["side"]): (r["program_version"], r["amount"]) for r in rows
    }
    assert priced == {
        (late["conversion_id"], "referrer"): (1, 2000),
        (late["conversion_id"], "referee"): (1, 2000),
        (now["conversion_id"], "referrer"): (3, 500),
        (now["conversion_id"], "referee"): (3, 500),
    }
    assert view["balances"] == {"USD": 2500}
    assert await ledger_unbalanced(stack) == []


async def test_a_refund_takes_back_a_milestone_still_on_hold(stack: Stack, urls: Urls) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        program = await create_program(
            http,
            urls,
            stack.admin_api_key,
            {
                "referrer": {"amount": 500, "unit": "USD"},
                "milestones": [{"threshold": 2, "amount": 1000, "unit": "USD"}],
                "hold_days": 30,
            },
        )
        participant = await enrol(http, program)
        first, _ = await refer_many(http, program, participant["code"], 2)
        await wait_rows(stack, program.id, lambda rows: len(rows) == 3)
        view = await participant_view(http, program, participant["id"])
        assert view["pending"] == {"USD": 2000}
        assert [m["reached"] for m in view["progress"]["milestones"]] == [True]

        out = await refund(http, program, first)
        assert out["full"] and out["published"]
        rows = await wait_rows(
            stack,
            program.id,
            lambda rows: sum(r["status"] == "reversed" for r in rows) == 2,
        )
        view = await participant_view(http, program, participant["id"])

    status = {(str(r["conversion_id"]), r["rule"]): r["status"] for r in rows}
    assert status[(first.conversion["conversion_id"], "base")] == "reversed"
    assert sorted(status.values()) == ["pending", "reversed", "reversed"]
    assert [r["status"] for r in rows if r["rule"] == "milestone:2"] == ["reversed"]
    assert view["pending"] == {"USD": 500}
    assert view["progress"]["converted"] == 1
    assert [m["reached"] for m in view["progress"]["milestones"]] == [False]
    assert await ledger_unbalanced(stack) == []
