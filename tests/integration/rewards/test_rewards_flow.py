"""Rewards handlers and scheduler against a real PostgreSQL: versions in force, caps,
milestones, holds, reversals, fulfilment channels, and a ledger that stays balanced."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from services.rewards import consumers, redemption, scheduler
from shared.contracts import ProgramPublished, ReferralConverted, ReferralReversed
from shared.contracts.programs import ProgramDefinition

T0 = datetime(2026, 1, 10, tzinfo=UTC)


async def apply(pool: asyncpg.Pool, handler: Any, event: Any) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await handler(conn, event, None)


async def publish(
    pool: asyncpg.Pool,
    program_id: uuid.UUID,
    rewards: dict[str, Any],
    *,
    version: int = 1,
    effective_from: datetime = T0,
) -> None:
    definition = ProgramDefinition.model_validate(
        {"destination_url": "https://shop.example.com/", "rewards": rewards}
    )
    await apply(
        pool,
        consumers.on_program_published,
        ProgramPublished(
            program_id=program_id,
            version=version,
            effective_from=effective_from,
            name="p",
            definition=definition,
        ),
    )


def conversion(
    program_id: uuid.UUID,
    referrer_id: uuid.UUID,
    *,
    at: datetime = T0 + timedelta(days=1),
    version: int | None = None,
    amount: int = 4999,
) -> ReferralConverted:
    n = uuid.uuid4()
    return ReferralConverted(
        conversion_id=n,
        referral_id=uuid.uuid4(),
        program_id=program_id,
        referrer_id=referrer_id,
        referee_customer_id=f"cust-{n.hex[:8]}",
        order_id=f"order-{n.hex[:8]}",
        amount=amount,
        currency="USD",
        converted_at=at,
        program_version=version,
    )


async def convert(pool: asyncpg.Pool, event: ReferralConverted) -> None:
    await apply(pool, consumers.on_referral_converted, event)


async def rewards_of(pool: asyncpg.Pool, program_id: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM rewards WHERE program_id = $1 ORDER BY created_at, rule, side", program_id
    )


async def assert_ledger_balanced(pool: asyncpg.Pool) -> None:
    unbalanced = await pool.fetch(
        "SELECT entry_id FROM ledger_postings GROUP BY entry_id, unit HAVING sum(amount) <> 0"
    )
    assert unbalanced == []
    assert await pool.fetchval("SELECT coalesce(sum(amount), 0) FROM ledger_postings") == 0


async def balance(pool: asyncpg.Pool, account: str) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT unit, -sum(amount) AS b FROM ledger_postings WHERE account = $1 GROUP BY unit",
        account,
    )
    return {r["unit"]: int(r["b"]) for r in rows}


async def outbox_types(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch("SELECT topic FROM outbox ORDER BY id")
    return [r["topic"] for r in rows]


async def test_dropbox_cap_is_exact_and_recorded(pool: asyncpg.Pool) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(
        pool,
        pid,
        {
            "referrer": {"amount": 500, "unit": "MB", "lifetime_cap": 16_000},
            "referee": {"amount": 500, "unit": "MB"},
        },
    )
    first = conversion(pid, referrer)
    for event in [first] + [conversion(pid, referrer) for _ in range(39)]:
        await convert(pool, event)
    await convert(pool, first)  # a duplicate that got past the inbox changes nothing
    rows = await rewards_of(pool, pid)
    referrer_rows = [r for r in rows if r["side"] == "referrer"]
    assert len(referrer_rows) == 40
    assert sum(r["amount"] for r in referrer_rows) == 16_000
    assert sum(r["status"] == "capped" for r in referrer_rows) == 8
    assert all(r["amount"] == 500 for r in rows if r["side"] == "referee")
    assert await balance(pool, f"participant:{pid}:{referrer}") == {"MB": 16_000}
    await assert_ledger_balanced(pool)


async def test_the_version_in_force_at_the_conversion_decides(pool: asyncpg.Pool) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    for version, amount, day in ((1, 2000, 0), (2, 1000, 10), (3, 500, 20)):
        await publish(
            pool,
            pid,
            {"referrer": {"amount": amount, "unit": "USD"}},
            version=version,
            effective_from=T0 + timedelta(days=day),
        )
    # Arriving now, in any order; the late one (day 5) still gets version 1.
    for day in (25, 15, 5):
        await convert(pool, conversion(pid, referrer, at=T0 + timedelta(days=day)))
    # Attribution named the version: that one is used.
    await convert(pool, conversion(pid, referrer, at=T0 + timedelta(days=25), version=2))
    rows = await rewards_of(pool, pid)
    assert [(r["program_version"], r["amount"]) for r in rows] == [
        (3, 500),
        (2, 1000),
        (1, 2000),
        (2, 1000),
    ]


async def test_conversion_waits_for_its_program(pool: asyncpg.Pool) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await convert(pool, conversion(pid, referrer))
    assert await rewards_of(pool, pid) == []
    await publish(pool, pid, {"referrer": {"amount": 2000, "unit": "USD"}})
    [row] = await rewards_of(pool, pid)
    assert row["status"] == "issued" and row["amount"] == 2000


async def test_milestones_once_with_duplicates_and_events(pool: asyncpg.Pool) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(
        pool,
        pid,
        {
            "milestones": [
                {"threshold": 5, "perk": "event invitation"},
                {"threshold": 10, "perk": "founders edition"},
            ]
        },
    )
    events = [conversion(pid, referrer, at=T0 + timedelta(days=12 - i)) for i in range(12)]
    for event in events + events[:6]:
        await convert(pool, event)
    rows = await rewards_of(pool, pid)
    assert sorted((r["rule"], r["perk"]) for r in rows) == [
        ("milestone:10", "founders edition"),
        ("milestone:5", "event invitation"),
    ]
    assert (await outbox_types(pool)).count("milestone.reached") == 2
    assert await balance(pool, f"participant:{pid}:{referrer}") == {"PERK": 2}


async def test_hold_then_release_and_refund_during_hold_cancels(pool: asyncpg.Pool) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(pool, pid, {"referrer": {"amount": 2000, "unit": "USD"}, "hold_days": 30})
    kept, refunded = conversion(pid, referrer), conversion(pid, referrer)
    await convert(pool, kept)
    await convert(pool, refunded)
    assert {r["status"] for r in await rewards_of(pool, pid)} == {"pending"}
    assert await balance(pool, f"participant:{pid}:{referrer}") == {}

    await apply(pool, consumers.on_referral_reversed, reversal(refunded))
    assert await scheduler.release_due(pool) == 0  # not due yet
    assert await scheduler.release_due(pool, now=datetime.now(UTC) + timedelta(days=31)) == 1
    statuses = {r["conversion_id"]: r["status"] for r in await rewards_of(pool, pid)}
    assert statuses == {kept.conversion_id: "issued", refunded.conversion_id: "reversed"}
    assert await balance(pool, f"participant:{pid}:{referrer}") == {"USD": 2000}
    reversed_events = await pool.fetch("SELECT payload FROM outbox WHERE topic = 'reward.reversed'")
    assert [json.loads(r["payload"])["kind"] for r in reversed_events] == ["cancelled"]
    await assert_ledger_balanced(pool)


def reversal(event: ReferralConverted, *, full: bool = True) -> ReferralReversed:
    return ReferralReversed(
        refund_id=uuid.uuid4(),
        conversion_id=event.conversion_id,
        referral_id=event.referral_id,
        program_id=event.program_id,
        referrer_id=event.referrer_id,
        order_id=event.order_id,
        refunded_amount=event.amount,
        currency="USD",
        full=full,
        reversed_at=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    ("clawback", "expected_balance"), [("allow_negative", -1500), ("available_only", 0)]
)
async def test_refund_after_issue_claws_back(
    pool: asyncpg.Pool, clawback: str, expected_balance: int
) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(pool, pid, {"referrer": {"amount": 2000, "unit": "USD"}, "clawback": clawback})
    event = conversion(pid, referrer)
    await convert(pool, event)
    async with pool.acquire() as conn, conn.transaction():
        # The participant spent most of it.
        spent = await redemption.redeem(conn, pid, referrer, 1500, "USD")
    assert spent.balance == 500
    refund = reversal(event)
    await apply(pool, consumers.on_referral_reversed, refund)
    await apply(pool, consumers.on_referral_reversed, refund)  # twice: once
    [row] = await rewards_of(pool, pid)
    assert row["status"] == "reversed"
    assert await balance(pool, f"participant:{pid}:{referrer}") == {"USD": expected_balance}
    [payload] = await pool.fetch("SELECT payload FROM outbox WHERE topic = 'reward.reversed'")
    assert json.loads(payload["payload"])["kind"] == "clawed_back"
    await assert_ledger_balanced(pool)


async def test_coupon_pool_hands_each_code_once_and_fails_visibly_when_empty(
    pool: asyncpg.Pool,
) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(
        pool,
        pid,
        {"referrer": {"amount": 1, "unit": "COUPON"}, "fulfilment": {"kind": "coupon_pool"}},
    )
    await pool.execute(
        "INSERT INTO coupon_codes (program_id, code) SELECT $1, unnest($2::text[])",
        pid,
        ["A-1", "A-2"],
    )
    for _ in range(3):
        await convert(pool, conversion(pid, referrer))
    rows = await rewards_of(pool, pid)
    assert sorted(r["coupon_code"] for r in rows if r["status"] == "issued") == ["A-1", "A-2"]
    [failed] = [r for r in rows if r["status"] == "failed"]
    assert failed["failure_reason"] == "coupon_pool_empty"
    assert "reward.failed" in await outbox_types(pool)
    assert await balance(pool, f"participant:{pid}:{referrer}") == {"COUPON": 0}
    await assert_ledger_balanced(pool)


async def test_coupon_reward_on_hold_gets_its_code_when_the_hold_ends(pool: asyncpg.Pool) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(
        pool,
        pid,
        {
            "referrer": {"amount": 1, "unit": "COUPON"},
            "fulfilment": {"kind": "coupon_pool"},
            "hold_days": 14,
        },
    )
    await pool.execute("INSERT INTO coupon_codes (program_id, code) VALUES ($1, 'H-1')", pid)
    await convert(pool, conversion(pid, referrer))
    [row] = await rewards_of(pool, pid)
    assert (row["status"], row["coupon_code"]) == ("pending", None)
    assert await balance(pool, f"pending:{pid}:referrer:{referrer}") == {"COUPON": 1}
    assert "reward.issued" not in await outbox_types(pool)

    assert await scheduler.release_due(pool, now=datetime.now(UTC) + timedelta(days=15)) == 1
    [row] = await rewards_of(pool, pid)
    assert (row["status"], row["coupon_code"]) == ("issued", "H-1")
    assert await balance(pool, f"pending:{pid}:referrer:{referrer}") == {"COUPON": 0}
    assert await balance(pool, f"participant:{pid}:{referrer}") == {"COUPON": 0}
    assert await balance(pool, f"payout:{pid}:coupon") == {"COUPON": 1}
    await assert_ledger_balanced(pool)


async def test_webhook_fulfilment_signed_retried_then_failed(pool: asyncpg.Pool) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(
        pool,
        pid,
        {
            "referrer": {"amount": 2000, "unit": "USD"},
            "fulfilment": {
                "kind": "webhook",
                "webhook_url": "http://company.example/rewards",
                "max_attempts": 2,
                "backoff_seconds": 0.01,
            },
        },
    )
    secret = await pool.fetchval(
        "SELECT webhook_secret FROM program_secrets WHERE program_id = $1", pid
    )
    calls: list[httpx.Request] = []
    answers = iter([500, 204, 500, 503])

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        # The company can verify the call with its Standard Webhooks library.
        Webhook(secret).verify(request.content, dict(request.headers))
        return httpx.Response(next(answers))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        await convert(pool, ok := conversion(pid, referrer))
        [row] = await rewards_of(pool, pid)
        assert row["status"] == "available"
        assert await scheduler.deliver_due_webhooks(pool, http, allow_private=True) == 1
        [row] = await rewards_of(pool, pid)
        assert (row["status"], row["attempts"]) == ("available", 1)
        await _wait_due(pool)
        await scheduler.deliver_due_webhooks(pool, http, allow_private=True)
        await convert(pool, bad := conversion(pid, referrer))
        await scheduler.deliver_due_webhooks(pool, http, allow_private=True)
        await _wait_due(pool)
        await scheduler.deliver_due_webhooks(pool, http, allow_private=True)
    statuses = {r["conversion_id"]: r["status"] for r in await rewards_of(pool, pid)}
    assert statuses == {ok.conversion_id: "issued", bad.conversion_id: "failed"}
    assert len(calls) == 4
    # Retries of one reward keep its webhook-id (the company de-duplicates on it).
    assert (
        calls[0].headers["webhook-id"]
        == calls[1].headers["webhook-id"]
        == str((await rewards_of(pool, pid))[0]["id"])
    )
    topics = await outbox_types(pool)
    assert topics.count("reward.issued") == 1 and topics.count("reward.failed") == 1
    # Delivered to the company: off the internal balance, and the failed one went back.
    assert await balance(pool, f"participant:{pid}:{referrer}") == {"USD": 0}
    await assert_ledger_balanced(pool)


async def _wait_due(pool: asyncpg.Pool) -> None:
    import asyncio

    for _ in range(100):
        if await pool.fetchval(
            "SELECT bool_and(next_attempt_at <= now()) FROM rewards WHERE status = 'available'"
        ):
            return
        await asyncio.sleep(0.01)


async def test_the_ledger_refuses_rewrites(pool: asyncpg.Pool) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(pool, pid, {"referrer": {"amount": 2000, "unit": "USD"}})
    await convert(pool, conversion(pid, referrer))
    with pytest.raises(asyncpg.RaiseError):
        await pool.execute("UPDATE ledger_postings SET amount = amount * 2")
    with pytest.raises(asyncpg.RaiseError):
        await pool.execute("DELETE FROM ledger_entries")
    # One reward per (conversion, rule, side), whatever the code does.
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute(
            "INSERT INTO rewards (id, conversion_id, program_id, program_version, referrer_id, "
            "side, recipient, amount, unit, status) SELECT $1, conversion_id, program_id, "
            "program_version, referrer_id, side, recipient, amount, unit, status FROM rewards "
            "LIMIT 1",
            uuid.uuid4(),
        )


async def test_the_ledger_refuses_an_entry_that_does_not_balance(pool: asyncpg.Pool) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(pool, pid, {"referrer": {"amount": 2000, "unit": "USD"}})
    await convert(pool, conversion(pid, referrer))
    reward_id = await pool.fetchval("SELECT id FROM rewards WHERE program_id = $1", pid)

    async def entry_with(postings: list[tuple[str, str, int]]) -> None:
        await pool.execute(
            "WITH e AS (INSERT INTO ledger_entries (reward_id, kind) VALUES ($1, 'probe') "
            "RETURNING id) INSERT INTO ledger_postings (entry_id, account, unit, amount) "
            "SELECT e.id, a, u, n FROM e, unnest($2::text[], $3::text[], $4::bigint[]) "
            "AS v (a, u, n)",
            reward_id,
            [a for a, _, _ in postings],
            [u for _, u, _ in postings],
            [n for _, _, n in postings],
        )

    for unbalanced in (
        [("x", "USD", 5), ("y", "USD", -4)],
        [("x", "USD", 5), ("y", "EUR", -5)],  # balanced in sum, not per unit
        [("x", "USD", 5)],
    ):
        with pytest.raises(asyncpg.RaiseError, match="does not balance"):
            await entry_with(unbalanced)
    await entry_with([("x", "USD", 5), ("y", "USD", -2), ("z", "USD", -3)])
    await assert_ledger_balanced(pool)


async def test_erasure_hashes_referee_ids_and_keeps_amounts(pool: asyncpg.Pool) -> None:
    from shared.contracts import ParticipantErased

    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(
        pool,
        pid,
        {"referrer": {"amount": 2000, "unit": "USD"}, "referee": {"amount": 1000, "unit": "USD"}},
    )
    event = conversion(pid, referrer)
    await convert(pool, event)
    await apply(
        pool,
        consumers.on_participant_erased,
        ParticipantErased(participant_id=referrer, program_id=pid, erased_at=datetime.now(UTC)),
    )
    assert not await pool.fetchval(
        "SELECT count(*) FROM rewards WHERE recipient = $1", event.referee_customer_id
    )
    assert not await pool.fetchval(
        "SELECT count(*) FROM conversions WHERE referee_customer_id = $1",
        event.referee_customer_id,
    )
    assert await balance(pool, f"participant:{pid}:{referrer}") == {"USD": 2000}
    # A refund after the erasure still finds the referee's account.
    await apply(pool, consumers.on_referral_reversed, reversal(event))
    referee_accounts = await pool.fetch(
        "SELECT account, sum(amount) AS s FROM ledger_postings WHERE account LIKE 'referee:%' "
        "GROUP BY account"
    )
    assert [(r["s"]) for r in referee_accounts] == [0]
    await assert_ledger_balanced(pool)


async def test_partial_refunds_shrink_percentage_rewards_in_proportion(
    pool: asyncpg.Pool,
) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(
        pool,
        pid,
        {
            # 10% of the order for the referrer; a fixed 500 for the referee.
            "referrer": {"amount": 0, "unit": "USD", "percent_bp": 1000},
            "referee": {"amount": 500, "unit": "USD"},
        },
    )
    event = conversion(pid, referrer, amount=10_000)
    await convert(pool, event)
    account = f"participant:{pid}:{referrer}"
    assert await balance(pool, account) == {"USD": 1000}

    quarter = reversal(event, full=False).model_copy(update={"refunded_amount": 2500})
    await apply(pool, consumers.on_referral_reversed, quarter)
    await apply(pool, consumers.on_referral_reversed, quarter)  # the same refund twice: once
    assert await balance(pool, account) == {"USD": 750}
    second = reversal(event, full=False).model_copy(update={"refunded_amount": 2500})
    await apply(pool, consumers.on_referral_reversed, second)
    assert await balance(pool, account) == {"USD": 500}
    rows = {r["side"]: r for r in await rewards_of(pool, pid)}
    assert (rows["referrer"]["amount"], rows["referrer"]["status"]) == (500, "issued")
    assert rows["referee"]["amount"] == 500  # fixed: per converted referral

    await apply(pool, consumers.on_referral_reversed, reversal(event))  # then all of it
    assert await balance(pool, account) == {"USD": 0}
    kinds = [
        json.loads(r["payload"])["kind"]
        for r in await pool.fetch(
            "SELECT payload FROM outbox WHERE topic = 'reward.reversed' ORDER BY id"
        )
    ]
    assert kinds == ["clawed_back"] * 4  # 250, 250, then referrer 500 and referee 500
    await assert_ledger_balanced(pool)


async def test_a_partial_refund_before_the_reward_lowers_its_base(pool: asyncpg.Pool) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    event = conversion(pid, referrer, amount=10_000)
    await convert(pool, event)  # waits: no program yet
    refund = reversal(event, full=False).model_copy(update={"refunded_amount": 4000})
    await apply(pool, consumers.on_referral_reversed, refund)
    await publish(pool, pid, {"referrer": {"unit": "USD", "percent_bp": 1000}})
    [row] = await rewards_of(pool, pid)
    assert row["amount"] == 600


@pytest.mark.parametrize("first", ["publication", "conversion"])
async def test_a_publication_racing_its_first_conversion_still_rewards_it(
    pool: asyncpg.Pool, first: str
) -> None:
    """The two in concurrent transactions (two partition groups or two replicas): whichever
    commits second must see the other, or the conversion waits forever."""
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    published = ProgramPublished(
        program_id=pid,
        version=1,
        effective_from=T0,
        name="p",
        definition=ProgramDefinition.model_validate(
            {
                "destination_url": "https://shop.example.com/",
                "rewards": {"referrer": {"amount": 2000, "unit": "USD"}},
            }
        ),
    )
    steps = {
        "publication": (consumers.on_program_published, published),
        "conversion": (consumers.on_referral_converted, conversion(pid, referrer)),
    }
    second = "conversion" if first == "publication" else "publication"
    async with pool.acquire() as a, pool.acquire() as b:
        ta, tb = a.transaction(), b.transaction()
        await ta.start()
        await tb.start()
        handler, event = steps[first]
        await handler(a, event, None)
        # The second blocks on the program lock until the first commits.
        handler, event = steps[second]
        blocked = asyncio.create_task(handler(b, event, None))
        await asyncio.sleep(0.3)
        await ta.commit()
        await asyncio.wait_for(blocked, 10)
        await tb.commit()
    [row] = await rewards_of(pool, pid)
    assert row["status"] == "issued" and row["amount"] == 2000


async def assert_holdings_match_rewards(pool: asyncpg.Pool, program_id: uuid.UUID) -> None:
    """``holdings`` (kept by triggers) equals the sum of the base rewards not reversed, per
    recipient, unit and month of purchase: what the rules used to sum on every conversion."""
    summed = await pool.fetch(
        "SELECT r.side, r.recipient, r.unit, "
        "date_trunc('month', c.converted_at AT TIME ZONE 'UTC')::date AS month, "
        "sum(r.amount) AS amount FROM rewards r JOIN conversions c USING (conversion_id) "
        "WHERE r.program_id = $1 AND r.rule = 'base' AND r.status <> 'reversed' "
        "GROUP BY 1, 2, 3, 4",
        program_id,
    )
    held = await pool.fetch(
        "SELECT side, recipient, unit, month, amount FROM holdings "
        "WHERE program_id = $1 AND amount <> 0",
        program_id,
    )
    assert {tuple(r) for r in held} == {tuple(r) for r in summed if r["amount"] != 0}


async def test_a_refund_frees_cap_room_and_the_holdings_follow_every_change(
    pool: asyncpg.Pool,
) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(
        pool,
        pid,
        {
            # 10 % of each 5,000 order (500); a share, so that a partial refund reduces it.
            "referrer": {
                "amount": 0,
                "percent_bp": 1000,
                "unit": "USD",
                "lifetime_cap": 1000,
                "monthly_cap": 1000,
            },
            "referee": {"amount": 300, "unit": "USD"},
        },
    )
    first, second, third = (conversion(pid, referrer, amount=5000) for _ in range(3))
    next_month = conversion(pid, referrer, at=T0 + timedelta(days=40), amount=5000)
    for event in (first, second, third):
        await convert(pool, event)
    await assert_holdings_match_rewards(pool, pid)
    granted = {
        r["conversion_id"]: r["amount"]
        for r in await rewards_of(pool, pid)
        if r["side"] == "referrer"
    }
    assert granted == {first.conversion_id: 500, second.conversion_id: 500, third.conversion_id: 0}

    await apply(pool, consumers.on_referral_reversed, reversal(first))
    await assert_holdings_match_rewards(pool, pid)
    # The reversed reward no longer counts: the next purchase fits under both caps again.
    await convert(pool, next_month)
    [latest] = [
        r
        for r in await rewards_of(pool, pid)
        if r["conversion_id"] == next_month.conversion_id and r["side"] == "referrer"
    ]
    assert latest["amount"] == 500
    await assert_holdings_match_rewards(pool, pid)

    # A partial refund reduces the rewards it touches, and what they hold with them.
    partial = reversal(next_month, full=False).model_copy(update={"refunded_amount": 2500})
    await apply(pool, consumers.on_referral_reversed, partial)
    [reduced] = [
        r
        for r in await rewards_of(pool, pid)
        if r["conversion_id"] == next_month.conversion_id and r["side"] == "referrer"
    ]
    assert reduced["amount"] == 250  # 10 % of 5,000 - 2,500
    await assert_holdings_match_rewards(pool, pid)

    # A referee's customer id replaced by its hash moves what they hold with it.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE rewards SET recipient = 'hashed' WHERE program_id = $1 AND recipient = $2",
            pid,
            second.referee_customer_id,
        )
    await assert_holdings_match_rewards(pool, pid)
    await assert_ledger_balanced(pool)
