"""Reward scenarios through the real services: Dropbox (double-sided, capped), Tesla
(milestones once), PayPal (versions in force), refunds (cancel during hold, claw back
after issue), and the rewards APIs (coupons, redemption, totals, approve/cancel)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from devstack.journey import Urls, eventually
from devstack.stack import Stack, database_url_for
from shared.contracts import ReferralConverted
from shared.contracts.base import Event
from shared.messaging.outbox import envelope_for
from shared.messaging.producer import make_producer
from shared.settings import ServiceSettings

# Scenario programs make many signups from one test client in seconds: velocity and shared
# IP checks would (rightly) flag them, so these programs switch them off.
RELAXED_FRAUD = {
    "velocity": {"per_referrer_hour": None, "per_referrer_day": None, "per_ip_day": None},
    "same_ip_or_device": {"action": "allow"},
}


@dataclass
class Program:
    id: str
    key: str
    urls: Urls
    admin_key: str

    @property
    def server(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


@dataclass
class Referral:
    customer_id: str
    order_id: str
    conversion: dict[str, Any]


def _ok(response: httpx.Response, *codes: int) -> Any:
    assert response.status_code in (codes or (200, 201)), (
        f"{response.request.method} {response.request.url} -> "
        f"{response.status_code}: {response.text}"
    )
    return response.json()


def definition(rewards: dict[str, Any]) -> dict[str, Any]:
    return {
        "destination_url": "https://shop.example.com/welcome",
        "allowed_hosts": ["shop.example.com"],
        "fraud": RELAXED_FRAUD,
        "rewards": rewards,
    }


async def create_program(
    http: httpx.AsyncClient, urls: Urls, admin_key: str, rewards: dict[str, Any]
) -> Program:
    admin = {"Authorization": f"Bearer {admin_key}"}
    program = _ok(
        await http.post(
            f"{urls.links}/v1/programs",
            headers=admin,
            json={"name": f"rewards-{uuid.uuid4().hex[:6]}", "definition": definition(rewards)},
        )
    )
    key = _ok(await http.post(f"{urls.links}/v1/programs/{program['id']}/keys", headers=admin))
    return Program(program["id"], key["secret_key"], urls, admin_key)


async def publish_version(
    http: httpx.AsyncClient, program: Program, rewards: dict[str, Any], effective_from: datetime
) -> int:
    body = {"definition": definition(rewards), "effective_from": effective_from.isoformat()}
    out = _ok(
        await http.post(
            f"{program.urls.links}/v1/programs/{program.id}/versions",
            headers=program.admin,
            json=body,
        )
    )
    return int(out["version"])


async def enrol(http: httpx.AsyncClient, program: Program) -> dict[str, Any]:
    return _ok(  # type: ignore[no-any-return]
        await http.post(
            f"{program.urls.links}/v1/programs/{program.id}/participants",
            headers=program.server,
            json={"external_user_id": f"user-{uuid.uuid4().hex[:8]}", "locale": "en"},
        )
    )


async def refer(
    http: httpx.AsyncClient, program: Program, code: str, *, amount: int = 4999
) -> Referral:
    """One referee: signs up with the referrer's code, then buys."""
    # The participant's code reaches attribution through participant.enrolled: until then a
    # signup waits for it (pending) and is decided when it arrives.
    customer_id = await eventually(lambda: _signed_up(http, program, code), timeout_s=30)
    order_id = f"order-{uuid.uuid4().hex[:10]}"
    conversion = _ok(
        await http.post(
            f"{program.urls.attribution}/v1/conversions",
            headers={**program.server, "Idempotency-Key": order_id},
            json={
                "customer_id": customer_id,
                "order_id": order_id,
                "amount": amount,
                "currency": "USD",
            },
        )
    )
    assert conversion["published"], conversion
    return Referral(customer_id, order_id, conversion)


async def _signed_up(http: httpx.AsyncClient, program: Program, code: str) -> str | None:
    customer_id = f"cust-{uuid.uuid4().hex[:10]}"
    response = await http.post(
        f"{program.urls.attribution}/v1/signups",
        headers=program.server,
        json={"customer_id": customer_id, "referral_code": code},
    )
    if response.status_code == 403:  # the key has not reached attribution yet
        return None
    body = _ok(response, 200, 201, 202)
    if body["status"] == "pending":
        body = await eventually(lambda: _decided(http, program, body["signup_id"]), timeout_s=30)
    assert body["attributed"], body
    return customer_id


async def _decided(http: httpx.AsyncClient, program: Program, signup_id: str) -> Any:
    response = await http.get(
        f"{program.urls.attribution}/v1/signups/{signup_id}", headers=program.server
    )
    body = _ok(response, 200)
    return body if body["status"] != "pending" else None


async def refer_many(
    http: httpx.AsyncClient, program: Program, code: str, n: int, parallel: int = 4
) -> list[Referral]:
    """N journeys for one referrer, a few at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one() -> Referral:
        async with gate:
            return await refer(http, program, code)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def rewards_rows(stack: Stack, program_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url_for(stack.server_url, "rewards"))
    try:
        return await conn.fetch(
            "SELECT * FROM rewards WHERE program_id = $1 ORDER BY created_at, rule, side",
            uuid.UUID(program_id),
        )
    finally:
        await conn.close()


async def ledger_unbalanced(stack: Stack) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url_for(stack.server_url, "rewards"))
    try:
        return await conn.fetch(
            "SELECT entry_id, unit, sum(amount) FROM ledger_postings "
            "GROUP BY entry_id, unit HAVING sum(amount) <> 0"
        )
    finally:
        await conn.close()


async def wait_rows(
    stack: Stack, program_id: str, test: Any, timeout_s: float = 60.0
) -> list[asyncpg.Record]:
    async def probe() -> list[asyncpg.Record] | None:
        rows = await rewards_rows(stack, program_id)
        return rows if test(rows) else None

    return await eventually(probe, timeout_s=timeout_s)  # type: ignore[no-any-return]


async def participant_view(
    http: httpx.AsyncClient, program: Program, participant_id: str
) -> dict[str, Any]:
    return _ok(  # type: ignore[no-any-return]
        await http.get(
            f"{program.urls.rewards}/v1/programs/{program.id}/participants/"
            f"{participant_id}/rewards",
            headers=program.admin,
        )
    )


async def publish_direct(stack: Stack, events: list[Event]) -> None:
    """Put events straight onto their topics, as a duplicate or late delivery would."""
    producer = make_producer(
        ServiceSettings(
            kafka_bootstrap_servers=stack.bootstrap,
            kafka_enable_idempotence=not stack.embedded_broker,
        )
    )
    await producer.start()
    try:
        for event in events:
            env = envelope_for(event, "/tests/e2e")
            await producer.send_and_wait(
                event.TOPIC, value=env.data, key=event.key().encode(), headers=env.headers()
            )
    finally:
        await producer.stop()


def conversion_event(
    program: Program, referrer_id: str, *, converted_at: datetime, **over: Any
) -> ReferralConverted:
    n = uuid.uuid4()
    fields: dict[str, Any] = {
        "conversion_id": n,
        "referral_id": uuid.uuid4(),
        "program_id": uuid.UUID(program.id),
        "referrer_id": uuid.UUID(referrer_id),
        "referee_customer_id": f"late-{n.hex[:8]}",
        "order_id": f"late-{n.hex[:8]}",
        "amount": 4999,
        "currency": "USD",
        "converted_at": converted_at,
    }
    fields.update(over)
    return ReferralConverted(**fields)


async def enrol_as(http: httpx.AsyncClient, program: Program, external_user_id: str) -> str:
    """Enrol a referee as a participant under their own customer id."""
    out = _ok(
        await http.post(
            f"{program.urls.links}/v1/programs/{program.id}/participants",
            headers=program.server,
            json={"external_user_id": external_user_id, "locale": "en"},
        )
    )
    return str(out["id"])


async def adjust(
    http: httpx.AsyncClient,
    program: Program,
    participant_id: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> dict[str, Any]:
    return _ok(  # type: ignore[no-any-return]
        await http.post(
            f"{program.urls.rewards}/v1/programs/{program.id}/participants/"
            f"{participant_id}/adjustments",
            headers=headers,
            json=body,
        ),
        200,
        201,
    )


async def assert_statement_adds_up(
    http: httpx.AsyncClient, program: Program, participant_id: str
) -> dict[str, Any]:
    """The statement's postings, read a few at a time (and as CSV), sum per role and unit to
    the balances the participant rewards endpoint shows; the statement's totals are those
    balances. Returns the participant view."""
    base = f"{program.urls.rewards}/v1/programs/{program.id}/participants/{participant_id}"
    view = await participant_view(http, program, participant_id)
    lines: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = _ok(await http.get(f"{base}/statement", params=params, headers=program.server))
        lines += page["lines"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    sums: dict[str, dict[str, int]] = {}
    for line in lines:
        units = sums.setdefault(line["role"], {})
        units[line["unit"]] = units.get(line["unit"], 0) + line["amount"]
    roles = ("balances", "pending", "referee_balances", "referee_pending")
    shown = {role: {u: v for u, v in view[role].items() if v} for role in roles}
    assert {r: {u: v for u, v in sums.get(r, {}).items() if v} for r in roles} == shown
    assert page["totals"] == {role: view[role] for role in roles}
    assert len({(x["entry_id"], x["account"]) for x in lines}) == len(lines)
    exported = await http.get(f"{base}/statement.csv", headers=program.admin)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(r["entry_id"]) for r in rows] == [x["entry_id"] for x in lines]
    return view


async def _enrolled_in_rewards(
    http: httpx.AsyncClient, program: Program, participant_id: str
) -> bool | None:
    """Whether rewards knows the participant yet (404 until its enrolment arrives)."""
    response = await http.get(
        f"{program.urls.rewards}/v1/programs/{program.id}/participants/{participant_id}/rewards",
        headers=program.admin,
    )
    return True if response.status_code == 200 else None


async def assert_program_statement_adds_up(http: httpx.AsyncClient, program: Program) -> None:
    """What the program's statement says it still owes is reward-totals' liability."""
    base = f"{program.urls.rewards}/v1/programs/{program.id}"
    statement = _ok(await http.get(f"{base}/statement", headers=program.admin))
    totals = _ok(await http.get(f"{base}/reward-totals", headers=program.admin))
    owed = {u: t["liability"] for u, t in totals["units"].items() if t["liability"]}
    assert {u: v for u, v in statement["totals"]["liability"].items() if v} == owed


# --- scenarios ----------------------------------------------------------------------------


async def test_dropbox_double_sided_500_mb_capped_at_16_gb(stack: Stack, urls: Urls) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        program = await create_program(
            http,
            urls,
            stack.admin_api_key,
            {
                "referrer": {"amount": 500, "unit": "MB", "lifetime_cap": 16_000},
                "referee": {"amount": 500, "unit": "MB"},
            },
        )
        participant = await enrol(http, program)
        referrals = await refer_many(http, program, participant["code"], 40)
        rows = await wait_rows(stack, program.id, lambda rows: len(rows) == 80)
        view = await participant_view(http, program, participant["id"])

    referrer = [r for r in rows if r["side"] == "referrer"]
    referee = [r for r in rows if r["side"] == "referee"]
    assert sum(r["amount"] for r in referrer) == 16_000
    assert view["balances"] == {"MB": 16_000}
    # The 8 conversions past the cap are recorded as capped, not dropped.
    assert sorted(r["status"] for r in referrer) == ["capped"] * 8 + ["issued"] * 32
    assert sum(r["status"] == "capped" for r in view["rewards"]) == 8
    assert sorted(r["recipient"] for r in referee) == sorted(x.customer_id for x in referrals)
    assert {(r["amount"], r["unit"], r["status"]) for r in referee} == {(500, "MB", "issued")}
    assert view["progress"]["converted"] == 40
    assert await ledger_unbalanced(stack) == []

    # Support grants 1 GB of goodwill, finance corrects 200 MB down (sent twice: once), and
    # a referee enrols: the statements add up to the balances on both sides.
    async with httpx.AsyncClient(timeout=15) as http:
        goodwill = {"kind": "goodwill", "amount": 1000, "unit": "MB", "reason": "outage"}
        made = await adjust(http, program, participant["id"], goodwill, program.admin)
        assert made["actor"] == "admin" and made["balance"] == 17_000
        correction = {"kind": "correction", "amount": -200, "unit": "MB", "reason": "double"}
        keyed = {**program.server, "Idempotency-Key": f"fix-{uuid.uuid4().hex[:8]}"}
        fixed = await adjust(http, program, participant["id"], correction, keyed)
        assert await adjust(http, program, participant["id"], correction, keyed) == fixed
        assert fixed["actor"].startswith("key:") and fixed["balance"] == 16_800
        referee_id = await enrol_as(http, program, referrals[0].customer_id)
        await eventually(lambda: _enrolled_in_rewards(http, program, referee_id), timeout_s=30)
        view = await assert_statement_adds_up(http, program, participant["id"])
        assert view["balances"] == {"MB": 16_800}
        referee_view = await assert_statement_adds_up(http, program, referee_id)
        assert referee_view["referee_balances"] == {"MB": 500}
        assert [r["side"] for r in referee_view["rewards"]] == ["referee"]
        await assert_program_statement_adds_up(http, program)
    assert await ledger_unbalanced(stack) == []


async def test_tesla_milestones_granted_once_out_of_order_and_twice(
    stack: Stack, urls: Urls
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        program = await create_program(
            http,
            urls,
            stack.admin_api_key,
            {
                "milestones": [
                    {"threshold": 5, "perk": "event invitation"},
                    {"threshold": 10, "perk": "founders edition"},
                ]
            },
        )
        created = datetime.now(UTC)
        participant = await enrol(http, program)
        first = await refer_many(http, program, participant["code"], 4)
        view = await eventually(
            lambda: _view_if(
                http, program, participant["id"], lambda v: v["progress"]["converted"] == 4
            )
        )
        assert view["progress"]["next_milestone"]["perk"] == "event invitation"
        assert view["progress"]["remaining_to_next"] == 1

        # Late conversions (converted before the ones already rewarded), one of them
        # delivered twice, and a replay of an applied conversion under a new event id.
        now = datetime.now(UTC)
        late = [
            conversion_event(
                program,
                participant["id"],
                converted_at=created + timedelta(milliseconds=ms),
                program_version=1,
            )
            for ms in (300, 200, 100)
        ]
        replayed = conversion_event(
            program,
            participant["id"],
            converted_at=now,
            conversion_id=uuid.UUID(first[0].conversion["conversion_id"]),
            referral_id=uuid.UUID(first[0].conversion["referral_id"]),
            referee_customer_id=first[0].customer_id,
            order_id=first[0].order_id,
        )
        await publish_direct(stack, [late[2], late[0], late[0], replayed, late[1]])
        await refer_many(http, program, participant["code"], 5)
        view = await eventually(
            lambda: _view_if(
                http, program, participant["id"], lambda v: v["progress"]["converted"] == 12
            )
        )
        await asyncio.sleep(1.0)  # a wrongly granted duplicate would have time to appear
        rows = await rewards_rows(stack, program.id)

    milestones = sorted((r["rule"], r["perk"]) for r in rows if r["rule"] != "base")
    assert milestones == [("milestone:10", "founders edition"), ("milestone:5", "event invitation")]
    view_ms = {m["threshold"]: m["reached"] for m in view["progress"]["milestones"]}
    assert view_ms == {5: True, 10: True}
    assert view["progress"]["next_milestone"] is None
    assert await ledger_unbalanced(stack) == []

    async with httpx.AsyncClient(timeout=15) as http:
        goodwill = {"kind": "goodwill", "amount": 1, "unit": "PERK", "reason": "late invite"}
        await adjust(http, program, participant["id"], goodwill, program.server)
        view = await assert_statement_adds_up(http, program, participant["id"])
        assert view["balances"] == {"PERK": 3}  # two milestone perks and the goodwill one
        await assert_program_statement_adds_up(http, program)
    assert await ledger_unbalanced(stack) == []


async def _view_if(
    http: httpx.AsyncClient, program: Program, participant_id: str, test: Any
) -> dict[str, Any] | None:
    view = await participant_view(http, program, participant_id)
    return view if test(view) else None


async def test_paypal_each_reward_uses_the_version_in_force(stack: Stack, urls: Urls) -> None:
    def usd(amount: int) -> dict[str, Any]:
        return {
            "referrer": {"amount": amount, "unit": "USD"},
            "referee": {"amount": amount, "unit": "USD"},
        }

    async with httpx.AsyncClient(timeout=15) as http:
        program = await create_program(http, urls, stack.admin_api_key, usd(2000))
        participant = await enrol(http, program)
        v1_time = datetime.now(UTC)
        r1 = await refer(http, program, participant["code"])
        assert await publish_version(http, program, usd(1000), datetime.now(UTC)) == 2
        await version_arrived(stack, program, 2)
        r2 = await refer(http, program, participant["code"])
        # $5 is published now but in force only a few seconds later: a conversion in between
        # is still a $10 one, though rewards already knows version 3.
        v3_from = datetime.now(UTC) + timedelta(seconds=10)
        assert await publish_version(http, program, usd(500), v3_from) == 3
        await version_arrived(stack, program, 3)
        r3 = await refer(http, program, participant["code"])
        assert datetime.now(UTC) < v3_from, "too slow to convert before version 3 took effect"
        await asyncio.sleep(max(0.0, (v3_from - datetime.now(UTC)).total_seconds()) + 0.5)
        r4 = await refer(http, program, participant["code"])
        # A conversion made under $20 that reaches rewards only now, with no version named.
        late = conversion_event(program, participant["id"], converted_at=v1_time)
        await publish_direct(stack, [late])
        rows = await wait_rows(stack, program.id, lambda rows: len(rows) == 10)

    by_conversion: dict[str, set[tuple[int, int]]] = {}
    for r in rows:
        by_conversion.setdefault(str(r["conversion_id"]), set()).add(
            (r["program_version"], r["amount"])
        )
    expected = {
        r1.conversion["conversion_id"]: (1, 2000),
        r2.conversion["conversion_id"]: (2, 1000),
        r3.conversion["conversion_id"]: (2, 1000),
        r4.conversion["conversion_id"]: (3, 500),
        str(late.conversion_id): (1, 2000),
    }
    assert by_conversion == {c: {v} for c, v in expected.items()}
    assert await ledger_unbalanced(stack) == []


async def version_arrived(stack: Stack, program: Program, version: int) -> None:
    """Wait until rewards and attribution both hold the version: each reads the topic on its
    own, and a purchase priced before attribution has it would use the version before."""
    for service in ("rewards", "attribution"):
        conn = await asyncpg.connect(database_url_for(stack.server_url, service))
        try:
            await eventually(
                lambda conn=conn: conn.fetchval(
                    "SELECT true FROM program_versions WHERE program_id = $1 AND version = $2",
                    uuid.UUID(program.id),
                    version,
                )
            )
        finally:
            await conn.close()


async def refund(http: httpx.AsyncClient, program: Program, referral: Referral) -> dict[str, Any]:
    return _ok(  # type: ignore[no-any-return]
        await http.post(
            f"{program.urls.attribution}/v1/refunds",
            headers=program.server,
            json={"refund_id": f"rf-{uuid.uuid4().hex[:8]}", "order_id": referral.order_id},
        )
    )


async def test_refund_during_hold_cancels_and_after_issue_claws_back(
    stack: Stack, urls: Urls
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        # A hold of 15 seconds (hold_days is a float so tests can make it tiny).
        program = await create_program(
            http,
            urls,
            stack.admin_api_key,
            {"referrer": {"amount": 2000, "unit": "USD"}, "hold_days": 15 / 86_400},
        )
        participant = await enrol(http, program)
        held, kept = await refer_many(http, program, participant["code"], 2)
        rows = await wait_rows(stack, program.id, lambda rows: len(rows) == 2)
        assert {r["status"] for r in rows} == {"pending"}
        view = await participant_view(http, program, participant["id"])
        assert view["pending"] == {"USD": 4000} and view["balances"] == {}

        out = await refund(http, program, held)
        assert out["full"] and out["published"]
        # The refunded one is cancelled; the other one's hold ends and it is issued.
        rows = await wait_rows(
            stack,
            program.id,
            lambda rows: sorted(r["status"] for r in rows) == ["issued", "reversed"],
        )
        status = {str(r["conversion_id"]): r["status"] for r in rows}
        assert status[held.conversion["conversion_id"]] == "reversed"
        assert status[kept.conversion["conversion_id"]] == "issued"
        view = await participant_view(http, program, participant["id"])
        assert view["balances"] == {"USD": 2000}

        # Refund after issue: clawed back with new entries, the balance back to 0.
        await refund(http, program, kept)
        await wait_rows(stack, program.id, lambda rows: {r["status"] for r in rows} == {"reversed"})
        view = await participant_view(http, program, participant["id"])
        assert view["balances"] == {"USD": 0}
        totals = _ok(
            await http.get(
                f"{urls.rewards}/v1/programs/{program.id}/reward-totals", headers=program.server
            )
        )
        assert totals["units"]["USD"]["reversed"] == 4000
        assert totals["units"]["USD"]["liability"] == 0
    conn = await asyncpg.connect(database_url_for(stack.server_url, "rewards"))
    try:
        kinds = await conn.fetch(
            "SELECT e.kind FROM ledger_entries e JOIN rewards r ON r.id = e.reward_id "
            "WHERE r.program_id = $1 ORDER BY e.id",
            uuid.UUID(program.id),
        )
        events = await conn.fetch(
            "SELECT payload FROM outbox WHERE topic = 'reward.reversed' AND key = $1",
            participant["id"],
        )
    finally:
        await conn.close()
    assert sorted(k["kind"] for k in kinds) == ["accrue", "accrue", "cancel", "clawback", "release"]
    assert sorted(json.loads(e["payload"])["kind"] for e in events) == [
        "cancelled",
        "clawed_back",
    ]
    assert await ledger_unbalanced(stack) == []


async def test_coupons_redemption_totals_and_admin_actions(stack: Stack, urls: Urls) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        coupons = await create_program(
            http,
            urls,
            stack.admin_api_key,
            {"referee": {"amount": 1, "unit": "COUPON"}, "fulfilment": {"kind": "coupon_pool"}},
        )
        base = f"{urls.rewards}/v1/programs/{coupons.id}"
        upload = _ok(
            await http.post(
                f"{base}/coupons", headers=coupons.admin, json={"codes": ["C-1", "C-1", "C-2"]}
            ),
            201,
        )
        assert upload == {"added": 2, "available": 2}
        bad = await http.post(f"{base}/coupons", headers=coupons.admin, json={"codes": [" "]})
        assert bad.status_code == 422 and bad.json()["field"] == "codes.0"
        participant = await enrol(http, coupons)
        await refer_many(http, coupons, participant["code"], 3)
        rows = await wait_rows(
            stack, coupons.id, lambda rows: {r["status"] for r in rows} == {"issued", "failed"}
        )
        assert sorted(r["coupon_code"] for r in rows if r["coupon_code"]) == ["C-1", "C-2"]
        assert [r["failure_reason"] for r in rows if r["status"] == "failed"] == [
            "coupon_pool_empty"
        ]
        metrics = (await http.get(f"{urls.rewards}/metrics")).text
        assert f'rewards_coupon_pool_empty_total{{program_id="{coupons.id}"}} 1.0' in metrics

        # Ledger fulfilment with a long hold: approve one, cancel the other, redeem.
        program = await create_program(
            http,
            urls,
            stack.admin_api_key,
            {
                "referrer": {"amount": 2000, "unit": "USD"},
                "hold_days": 30,
                "budget": 100_000,
                "budget_unit": "USD",
            },
        )
        base = f"{urls.rewards}/v1/programs/{program.id}"
        participant = await enrol(http, program)
        await refer_many(http, program, participant["code"], 2)
        first, second = await wait_rows(stack, program.id, lambda rows: len(rows) == 2)
        approved = _ok(
            await http.post(f"{base}/rewards/{first['id']}/approve", headers=program.server)
        )
        assert approved["status"] == "issued"
        again = await http.post(f"{base}/rewards/{first['id']}/approve", headers=program.server)
        assert again.status_code == 409
        cancelled = _ok(
            await http.post(f"{base}/rewards/{second['id']}/cancel", headers=program.server)
        )
        assert cancelled["status"] == "reversed"
        totals = _ok(await http.get(f"{base}/reward-totals", headers=program.server))
        assert totals["units"]["USD"]["issued"] == 2000
        assert totals["units"]["USD"]["liability"] == 2000
        assert totals["budget"] == {"amount": 100_000, "unit": "USD", "used": 2000, "left": 98_000}

        redeem_url = f"{base}/participants/{participant['id']}/redemptions"
        headers = {**program.server, "Idempotency-Key": "redeem-1"}
        spent = _ok(
            await http.post(redeem_url, headers=headers, json={"amount": 1500, "unit": "USD"}), 201
        )
        replay = await http.post(redeem_url, headers=headers, json={"amount": 1500, "unit": "USD"})
        assert replay.json() == spent and replay.headers["idempotent-replayed"] == "true"
        too_much = await http.post(
            redeem_url, headers=program.server, json={"amount": 501, "unit": "USD"}
        )
        assert too_much.status_code == 409 and too_much.json()["field"] == "amount"
        view = await participant_view(http, program, participant["id"])
        assert view["balances"] == {"USD": 500}
        # Another program's key sees nothing here.
        foreign = await http.get(f"{base}/reward-totals", headers=coupons.server)
        assert foreign.status_code == 403
    assert await ledger_unbalanced(stack) == []
