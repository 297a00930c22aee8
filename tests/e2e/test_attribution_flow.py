"""Attribution through real processes: the review queue releasing a held referral to rewards,
refunds relayed as reversals, self-referral rejected with its decision readable back, and
concurrent duplicates making one referral."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx

from devstack.journey import Journey, Urls, eventually, run_journey
from devstack.stack import Stack, database_url_for


async def _rows(stack: Stack, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url_for(stack.server_url, "attribution"))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _rewards(http: httpx.AsyncClient, urls: Urls, j: Journey) -> list[dict[str, Any]]:
    path = f"/v1/programs/{j.program_id}/participants/{j.participant_id}/rewards"
    response = await http.get(f"{urls.rewards}{path}", headers=_auth(j))
    return response.json()["rewards"] if response.status_code == 200 else []


def _auth(j: Journey) -> dict[str, str]:
    return {"Authorization": f"Bearer {j.program_key}"}


async def test_a_flagged_referral_is_held_then_approved_and_rewarded(
    stack: Stack, urls: Urls
) -> None:
    j = await run_journey(urls, stack.admin_api_key, log=lambda _: None)
    base = f"{urls.attribution}/v1"
    async with httpx.AsyncClient(timeout=10, headers=_auth(j)) as http:
        before = len(await _rewards(http, urls, j))
        signup = await http.post(
            f"{base}/signups",
            json={"customer_id": "friend-1", "referral_code": j.code,
                  "email": "friend@mailinator.com", "ip": "203.0.113.50"},
        )  # fmt: skip
        assert signup.status_code == 201 and signup.json()["status"] == "flagged"
        referral_id = signup.json()["signup_id"]
        order = f"o-{uuid.uuid4().hex[:8]}"
        held = await http.post(
            f"{base}/conversions",
            json={"customer_id": "friend-1", "order_id": order, "amount": 2500, "currency": "USD"},
        )
        assert held.json()["published"] is False
        queue = (await http.get(f"{base}/referrals", params={"status": "flagged"})).json()
        assert referral_id in [i["referral_id"] for i in queue["items"]]
        [item] = [i for i in queue["items"] if i["referral_id"] == referral_id]
        assert item["decision"]["rules"][0]["rule"] == "disposable_email"
        await asyncio.sleep(1.0)
        assert len(await _rewards(http, urls, j)) == before  # nothing paid while held

        approved = await http.post(f"{base}/referrals/{referral_id}/approve", json={})
        assert approved.status_code == 200 and approved.json()["status"] == "active"
        await eventually(lambda: _more_rewards(http, urls, j, before))

        refund = await http.post(f"{base}/refunds", json={"refund_id": order, "order_id": order})
        assert refund.status_code == 201 and refund.json()["full"] is True
    sent = await eventually(
        lambda: _rows(
            stack,
            "SELECT topic FROM outbox WHERE sent_at IS NOT NULL AND topic = 'referral.reversed' "
            "AND key = $1",
            j.participant_id,
        )
    )
    assert len(sent) == 1


async def _more_rewards(http: httpx.AsyncClient, urls: Urls, j: Journey, before: int) -> bool:
    return len(await _rewards(http, urls, j)) > before


async def test_self_referral_is_rejected_and_its_decision_read_back(
    stack: Stack, urls: Urls
) -> None:
    j = await run_journey(urls, stack.admin_api_key, log=lambda _: None)
    external = await _rows(
        stack,
        "SELECT external_user_id FROM participants WHERE participant_id = $1",
        uuid.UUID(j.participant_id),
    )
    async with httpx.AsyncClient(timeout=10, headers=_auth(j)) as http:
        signup = await http.post(
            f"{urls.attribution}/v1/signups",
            json={"customer_id": external[0]["external_user_id"], "referral_code": j.code},
        )
        assert signup.json()["status"] == "rejected"
        detail = await http.get(f"{urls.attribution}/v1/referrals/{signup.json()['signup_id']}")
        assert detail.json()["decision"]["outcome"] == "reject"
        assert detail.json()["decision"]["rules"][0]["inputs"]["same_customer_id"] is True
        funnel = await http.get(
            f"{urls.attribution}/v1/funnel", params={"participant_id": j.participant_id}
        )
        assert funnel.json()["rejections"] == {"self_referral": 1}
        assert funnel.json()["clicks"] >= 1 and funnel.json()["conversions"] == 1


async def test_concurrent_duplicate_signups_and_conversions_make_one_each(
    stack: Stack, urls: Urls
) -> None:
    j = await run_journey(urls, stack.admin_api_key, log=lambda _: None)
    base = f"{urls.attribution}/v1"
    customer = f"dup-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=20, headers=_auth(j)) as http:
        signups = await asyncio.gather(
            *[
                http.post(
                    f"{base}/signups", json={"customer_id": customer, "referral_code": j.code}
                )
                for _ in range(6)
            ]
        )
        assert sorted(s.status_code for s in signups) == [200] * 5 + [201]
        body = {"customer_id": customer, "order_id": f"{customer}-o", "amount": 100,
                "currency": "USD"}  # fmt: skip
        conversions = await asyncio.gather(
            *[http.post(f"{base}/conversions", json=body) for _ in range(6)]
        )
        assert sorted(c.status_code for c in conversions) == [200] * 5 + [201]
    referral_id = uuid.UUID(signups[0].json()["signup_id"])
    events = await _rows(
        stack,
        "SELECT topic, count(*) AS n FROM outbox WHERE convert_from(payload, 'UTF8')::jsonb "
        "->> 'referral_id' = $1 GROUP BY topic ORDER BY topic",
        str(referral_id),
    )
    assert [(e["topic"], e["n"]) for e in events] == [
        ("referral.converted", 1),
        ("referral.signed_up", 1),
    ]
