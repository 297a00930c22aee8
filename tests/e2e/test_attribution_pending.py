"""No referral lost to timing, through real processes: signups (and purchases) sent while the
broker is paused answer ``pending`` and are attributed to the right referrer, with their
rewards issued once, when the clicks the gateway journaled reach attribution; a signup sent
right after its referrer's enrolment is attributed."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx

from devstack.journey import BROWSER, Journey, Urls, eventually, run_journey
from devstack.stack import Stack, database_url_for

PAUSE_S = 30.0


async def _rows(stack: Stack, service: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url_for(stack.server_url, service))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _enrol(http: httpx.AsyncClient, urls: Urls, j: Journey) -> dict[str, Any]:
    response = await http.post(
        f"{urls.links}/v1/programs/{j.program_id}/participants",
        json={"external_user_id": f"user-{uuid.uuid4().hex[:8]}", "locale": "en"},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def _friend_signs_up_and_buys(
    http: httpx.AsyncClient, urls: Urls, code: str
) -> tuple[str, str, httpx.Response, httpx.Response]:
    """A friend clicks ``code``'s link (through the gateway) and at once signs up with the
    click and buys. Returns (customer, order, signup answer, purchase answer)."""
    redirect = await http.get(f"{urls.links}/r/{code}", headers={"User-Agent": BROWSER})
    assert redirect.status_code == 302, redirect.text
    click_id = parse_qs(urlsplit(redirect.headers["location"]).query)["ref_click"][0]
    customer, order = f"cust-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    signup = await http.post(
        f"{urls.attribution}/v1/signups", json={"customer_id": customer, "click_id": click_id}
    )
    purchase = await http.post(
        f"{urls.attribution}/v1/conversions",
        json={"customer_id": customer, "order_id": order, "amount": 4999, "currency": "USD"},
    )
    return customer, order, signup, purchase


async def test_signups_during_a_broker_pause_are_attributed_and_rewarded_once(
    stack: Stack, urls: Urls
) -> None:
    j = await run_journey(urls, stack.admin_api_key, log=lambda _: None)
    auth = {"Authorization": f"Bearer {j.program_key}"}
    async with httpx.AsyncClient(timeout=15, headers=auth) as http:
        other = await _enrol(http, urls, j)
        # Both referrers are known to attribution before the pause; their friends' clicks
        # will not be.
        for participant in (j.participant_id, other["id"]):
            await eventually(
                lambda p=participant: _rows(
                    stack, "attribution", "SELECT 1 FROM participants WHERE participant_id = $1",
                    uuid.UUID(p),
                )
            )  # fmt: skip
        referrers = {j.code: j.participant_id, other["code"]: other["id"]}
        friends: list[tuple[str, str, str, str]] = []  # (customer, order, signup id, referrer)
        stack.signal_broker(signal.SIGSTOP)
        paused_at = time.monotonic()
        try:
            for i in range(6):
                code = [j.code, other["code"]][i % 2]
                customer, order, signup, purchase = await _friend_signs_up_and_buys(
                    http, urls, code
                )
                assert signup.status_code == 202, signup.text
                assert signup.json()["status"] == "pending"
                assert signup.headers["Location"].endswith(signup.json()["signup_id"])
                assert purchase.status_code == 202, purchase.text
                friends.append((customer, order, signup.json()["signup_id"], referrers[code]))
            await asyncio.sleep(max(0.0, PAUSE_S - (time.monotonic() - paused_at)))
        finally:
            stack.signal_broker(signal.SIGCONT)

        async def decided(signup_id: str) -> dict[str, Any] | None:
            body = (await http.get(f"{urls.attribution}/v1/signups/{signup_id}")).json()
            return body if body["status"] != "pending" else None

        for customer, _, signup_id, referrer in friends:
            state = await eventually(lambda s=signup_id: decided(s), timeout_s=180)
            assert state["status"] == "active", (customer, state)
            assert state["referrer_id"] == referrer and state["reason"] == "click"

    orders = [order for _, order, _, _ in friends]

    async def rewarded() -> list[asyncpg.Record]:
        rows = await _rows(
            stack,
            "rewards",
            "SELECT c.order_id, r.side, r.status, r.referrer_id FROM rewards r "
            "JOIN conversions c ON c.conversion_id = r.conversion_id "
            "WHERE c.order_id = ANY($1::text[]) AND r.status = 'issued'",
            orders,
        )
        return rows if len(rows) >= 2 * len(orders) else []

    rows = await eventually(rewarded, timeout_s=180)
    await asyncio.sleep(2.0)  # anything paid twice would show by now
    rows = await rewarded()
    by_order = {(r["order_id"], r["side"]): str(r["referrer_id"]) for r in rows}
    assert len(rows) == len(by_order) == 2 * len(orders)
    for _, order, _, referrer in friends:
        assert by_order[(order, "referrer")] == by_order[(order, "referee")] == referrer
    # One referral.signed_up and one referral.converted per friend, however the events came.
    for topic in ("referral.signed_up", "referral.converted"):
        events = await _rows(
            stack,
            "attribution",
            "SELECT count(*) AS n FROM outbox o JOIN signups s "
            "ON convert_from(o.payload, 'UTF8')::jsonb ->> 'referral_id' = s.id::text "
            "WHERE o.topic = $1 AND s.id = ANY($2::uuid[])",
            topic,
            [uuid.UUID(signup_id) for _, _, signup_id, _ in friends],
        )
        assert events[0]["n"] == len(friends), topic


async def test_a_signup_sent_right_after_the_enrolment_is_attributed(
    stack: Stack, urls: Urls
) -> None:
    j = await run_journey(urls, stack.admin_api_key, log=lambda _: None)
    auth = {"Authorization": f"Bearer {j.program_key}"}
    async with httpx.AsyncClient(timeout=15, headers=auth) as http:
        fresh = await _enrol(http, urls, j)
        signup = await http.post(
            f"{urls.attribution}/v1/signups",
            json={"customer_id": f"cust-{uuid.uuid4().hex[:8]}", "referral_code": fresh["code"]},
        )
        # Decided at once if the enrolment was quicker, else pending until it arrives.
        assert signup.status_code in (201, 202), signup.text
        location = f"{urls.attribution}{signup.headers['Location']}"

        async def decided() -> dict[str, Any] | None:
            body = (await http.get(location)).json()
            return body if body["status"] != "pending" else None

        state = await eventually(decided, timeout_s=60)
    assert state["status"] == "active" and state["reason"] == "code"
    assert state["referrer_id"] == fresh["id"]
