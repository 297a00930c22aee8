"""One referral through the four services, as real processes over the real broker."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx

from devstack.journey import Urls, eventually, run_journey
from devstack.stack import Stack, database_url_for


async def _rows(stack: Stack, service: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url_for(stack.server_url, service))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_a_referral_flows_from_click_to_reward_and_notification(
    stack: Stack, urls: Urls
) -> None:
    journey = await run_journey(urls, stack.admin_api_key, log=lambda _: None)

    # Rewards: both sides, from version 1, on the ledger, balanced.
    assert journey.rewards["balances"] == {"USD": 2000}
    [referrer_reward] = journey.rewards["rewards"]
    assert referrer_reward["amount"] == 2000 and referrer_reward["program_version"] == 1
    rewards = await _rows(
        stack,
        "rewards",
        "SELECT side, recipient, amount, unit FROM rewards WHERE program_id = $1",
        uuid.UUID(journey.program_id),
    )
    assert sorted((r["side"], r["recipient"], r["amount"]) for r in rewards) == [
        ("referee", journey.customer_id, 2000),
        ("referrer", journey.participant_id, 2000),
    ]
    [balance] = await _rows(
        stack, "rewards", "SELECT coalesce(sum(amount), 0) AS s FROM ledger_postings"
    )
    assert balance["s"] == 0

    # Notifications: the welcome and the reward, each once.
    kinds = sorted(i["kind"] for i in journey.feed["items"])
    assert kinds == ["reward_issued", "welcome"]

    # Every hop went through an outbox and was relayed.
    for service in ("links", "attribution", "rewards"):
        [row] = await _rows(
            stack, service, "SELECT count(*) AS unsent FROM outbox WHERE sent_at IS NULL"
        )
        assert row["unsent"] == 0, service


async def test_a_repeated_conversion_pays_once(stack: Stack, urls: Urls) -> None:
    journey = await run_journey(urls, stack.admin_api_key, log=lambda _: None)
    server = {"Authorization": f"Bearer {journey.program_key}"}
    body = {
        "customer_id": journey.customer_id,
        "order_id": journey.order_id,
        "amount": 4999,
        "currency": "USD",
    }
    async with httpx.AsyncClient(timeout=10) as http:
        # Same Idempotency-Key and body: the first answer is replayed.
        replay = await http.post(
            f"{urls.attribution}/v1/conversions",
            json=body,
            headers={**server, "Idempotency-Key": journey.order_id},
        )
        assert replay.status_code == 201
        assert replay.headers["idempotent-replayed"] == "true"
        # Same key, other body: refused.
        other = await http.post(
            f"{urls.attribution}/v1/conversions",
            json={**body, "amount": 1},
            headers={**server, "Idempotency-Key": journey.order_id},
        )
        assert other.status_code == 422
        assert other.json()["field"] == "Idempotency-Key"
        # No key, same order, sent concurrently: the natural key keeps it to one conversion.
        answers = await asyncio.gather(
            *[
                http.post(f"{urls.attribution}/v1/conversions", json=body, headers=server)
                for _ in range(5)
            ]
        )
        assert {a.status_code for a in answers} == {200}
    await asyncio.sleep(1.0)  # give a wrongly published duplicate time to arrive
    rows = await _rows(
        stack,
        "rewards",
        "SELECT count(*) AS n FROM rewards WHERE program_id = $1",
        uuid.UUID(journey.program_id),
    )
    assert rows[0]["n"] == 2


async def test_management_refuses_a_key_of_another_program(stack: Stack, urls: Urls) -> None:
    first = await run_journey(urls, stack.admin_api_key, log=lambda _: None)
    second = await run_journey(urls, stack.admin_api_key, log=lambda _: None)
    async with httpx.AsyncClient(timeout=10) as http:
        foreign = {"Authorization": f"Bearer {second.program_key}"}
        path = f"/v1/programs/{first.program_id}/participants/{first.participant_id}"
        for url in (
            f"{urls.links}{path}",
            f"{urls.rewards}{path}/rewards",
            f"{urls.notifications}{path}/notifications",
        ):
            response = await http.get(url, headers=foreign)
            assert response.status_code == 403, url
            assert response.headers["content-type"] == "application/problem+json"
        # And tracking with that key only sees its own program's customers.
        response = await http.post(
            f"{urls.attribution}/v1/conversions",
            headers=foreign,
            json={
                "customer_id": first.customer_id,
                "order_id": "x-1",
                "amount": 1,
                "currency": "USD",
            },
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("/unknown-customer")


async def test_bad_input_gets_a_problem_naming_the_field(stack: Stack, urls: Urls) -> None:
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{urls.links}/v1/programs",
            headers=admin,
            json={
                "name": "Open redirect attempt",
                "definition": {
                    "destination_url": "https://evil.example/",
                    "allowed_hosts": ["shop.example.com"],
                },
            },
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == "definition.destination_url"

        unknown = await http.get(f"{urls.links}/r/NOSUCHCODE")
        assert unknown.status_code == 404


async def test_services_report_ready_and_export_metrics(stack: Stack, urls: Urls) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for service in ("links", "attribution", "rewards", "notifications"):
            base = getattr(urls, service)
            assert (await http.get(f"{base}/healthz")).status_code == 200
            ready = (await http.get(f"{base}/readyz")).json()
            assert ready["checks"] == {"database": "ok", "broker": "ok"}
            metrics = (await http.get(f"{base}/metrics")).text
            assert "outbox_backlog" in metrics
        consumed = (await http.get(f"{urls.rewards}/metrics")).text
        assert (
            'events_consumed_total{consumer="rewards",result="applied",topic="referral.converted"}'
            in consumed
        )


async def test_clicks_survive_a_graceful_restart_of_the_gateway(stack: Stack, urls: Urls) -> None:
    """SIGTERM drains the click buffer; every click of before the restart reaches attribution."""
    journey = await run_journey(urls, stack.admin_api_key, log=lambda _: None)
    server = {"Authorization": f"Bearer {journey.program_key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        clicks = []
        for _ in range(50):
            response = await http.get(f"{urls.links}/r/{journey.code}")
            clicks.append(response.headers["location"].rsplit("=", 1)[1])
        stack.stop_service("links")
        assert stack.processes.get("links") is None
        stack.start_service("links")
        await stack.wait_ready(services=("links",))
        for click_id in clicks:
            await eventually(lambda c=click_id: _seen(http, urls, c, server))


async def _seen(
    http: httpx.AsyncClient, urls: Urls, click_id: str, headers: dict[str, str]
) -> bool:
    response = await http.get(f"{urls.attribution}/v1/clicks/{click_id}", headers=headers)
    return response.status_code == 200


async def test_a_revoked_program_key_stops_working_everywhere(stack: Stack, urls: Urls) -> None:
    journey = await run_journey(urls, stack.admin_api_key, log=lambda _: None)
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    server = {"Authorization": f"Bearer {journey.program_key}"}
    key_id = journey.program_key.split("_")[1]
    path = f"/v1/programs/{journey.program_id}/participants/{journey.participant_id}"
    async with httpx.AsyncClient(timeout=10) as http:
        revoke = f"{urls.links}/v1/programs/{journey.program_id}/keys/{key_id}"
        assert (await http.delete(revoke, headers=admin)).status_code == 204
        assert (await http.delete(revoke, headers=admin)).status_code == 404
        assert (await http.get(f"{urls.links}{path}", headers=server)).status_code == 403

        async def refused_everywhere() -> bool:
            codes = [
                (await http.get(f"{urls.rewards}{path}/rewards", headers=server)).status_code,
                (
                    await http.get(f"{urls.notifications}{path}/notifications", headers=server)
                ).status_code,
                (
                    await http.get(
                        f"{urls.attribution}/v1/clicks/{journey.click_id}", headers=server
                    )
                ).status_code,
            ]
            return codes == [403, 403, 403]

        await eventually(refused_everywhere)
        # The admin key still reads the same data.
        assert (await http.get(f"{urls.rewards}{path}/rewards", headers=admin)).status_code == 200
