"""Rewards of purchases reported late, and milestones taken back by refunds, through the
consumer's handlers on real Postgres: caps per calendar month of the purchase, and the
program's ``milestone_reversal`` policy with the ledger entries that follow."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from services.rewards import consumers
from tests.integration.rewards.test_rewards_flow import (
    T0,
    apply,
    assert_ledger_balanced,
    balance,
    conversion,
    convert,
    publish,
    reversal,
    rewards_of,
)


async def test_a_monthly_cap_counts_the_month_the_purchase_was_made_in(
    pool: asyncpg.Pool,
) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(pool, pid, {"referrer": {"amount": 2000, "unit": "USD", "monthly_cap": 4000}})
    january, february = T0, T0 + timedelta(days=31)  # 10 January, 10 February
    for day in (1, 2):
        await convert(pool, conversion(pid, referrer, at=january + timedelta(days=day)))
    await convert(pool, conversion(pid, referrer, at=february))
    # Both arrive now, after February's: the January one meets January's full cap, the
    # February one still fits February's.
    late_january = conversion(pid, referrer, at=january + timedelta(days=3))
    late_february = conversion(pid, referrer, at=february + timedelta(days=1))
    await convert(pool, late_january)
    await convert(pool, late_february)
    by_conversion = {r["conversion_id"]: r for r in await rewards_of(pool, pid)}
    assert by_conversion[late_january.conversion_id]["status"] == "capped"
    assert by_conversion[late_january.conversion_id]["amount"] == 0
    assert by_conversion[late_february.conversion_id]["amount"] == 2000
    assert await balance(pool, f"participant:{pid}:{referrer}") == {"USD": 8000}
    await assert_ledger_balanced(pool)


async def _two_referrals_and_a_milestone(
    pool: asyncpg.Pool, rewards: dict[str, Any]
) -> tuple[uuid.UUID, uuid.UUID, list[Any]]:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    await publish(pool, pid, rewards)
    made = [conversion(pid, referrer), conversion(pid, referrer)]
    for event in made:
        await convert(pool, event)
    [milestone] = [r for r in await rewards_of(pool, pid) if r["rule"] == "milestone:2"]
    assert milestone["amount"] == 1000
    return pid, referrer, made


async def _milestone_entries(pool: asyncpg.Pool, pid: uuid.UUID) -> list[str]:
    rows = await pool.fetch(
        "SELECT e.kind FROM ledger_entries e JOIN rewards r ON r.id = e.reward_id "
        "WHERE r.program_id = $1 AND r.rule = 'milestone:2' ORDER BY e.id",
        pid,
    )
    return [r["kind"] for r in rows]


async def _reversed_kinds(pool: asyncpg.Pool, referrer: uuid.UUID) -> list[str]:
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE topic = 'reward.reversed' AND key = $1 ORDER BY id",
        str(referrer),
    )
    return [json.loads(r["payload"])["kind"] for r in rows]


MILESTONE = {"milestones": [{"threshold": 2, "amount": 1000, "unit": "USD"}]}


@pytest.mark.parametrize(
    ("policy", "hold_days", "status", "entries", "kinds", "held"),
    [
        # The default: taken back while on hold, kept once issued.
        (None, 30, "reversed", ["accrue", "cancel"], ["cancelled"], {"USD": 0}),
        (None, 0, "issued", ["issue"], [], {"USD": 1000}),
        ("reverse", 0, "reversed", ["issue", "clawback"], ["clawed_back"], {"USD": 0}),
        ("reverse", 30, "reversed", ["accrue", "cancel"], ["cancelled"], {"USD": 0}),
        ("keep", 30, "pending", ["accrue"], [], {"USD": 1000}),
        ("keep", 0, "issued", ["issue"], [], {"USD": 1000}),
    ],
    ids=["default-on-hold", "default-issued", "reverse-issued", "reverse-on-hold",
         "keep-on-hold", "keep-issued"],
)  # fmt: skip
async def test_a_refund_below_the_threshold_reverses_the_milestone_per_policy(
    pool: asyncpg.Pool,
    policy: str | None,
    hold_days: int,
    status: str,
    entries: list[str],
    kinds: list[str],
    held: dict[str, int],
) -> None:
    rewards: dict[str, Any] = {**MILESTONE, "hold_days": hold_days}
    if policy is not None:
        rewards["milestone_reversal"] = policy
    pid, referrer, made = await _two_referrals_and_a_milestone(pool, rewards)

    refund = reversal(made[0])
    await apply(pool, consumers.on_referral_reversed, refund)
    await apply(pool, consumers.on_referral_reversed, refund)  # a duplicate changes nothing
    [milestone] = [r for r in await rewards_of(pool, pid) if r["rule"] == "milestone:2"]
    assert milestone["status"] == status
    assert await _milestone_entries(pool, pid) == entries
    assert await _reversed_kinds(pool, referrer) == kinds
    # What the referrer holds or has on hold from the milestone, in the ledger.
    owed = await balance(pool, f"participant:{pid}:{referrer}")
    pending = await balance(pool, f"pending:{pid}:referrer:{referrer}")
    assert {"USD": owed.get("USD", 0) + pending.get("USD", 0)} == held
    await assert_ledger_balanced(pool)


async def test_a_reversed_milestone_is_reached_again_and_a_partial_refund_keeps_it(
    pool: asyncpg.Pool,
) -> None:
    pid, referrer, made = await _two_referrals_and_a_milestone(
        pool, {**MILESTONE, "milestone_reversal": "reverse"}
    )
    # A partial refund: the referral still counts, the milestone stays.
    await apply(pool, consumers.on_referral_reversed, reversal(made[0], full=False))
    assert [r["status"] for r in await rewards_of(pool, pid)] == ["issued"]
    # Fully refunded: one referral left, the milestone is clawed back.
    await apply(pool, consumers.on_referral_reversed, reversal(made[1]))
    assert await balance(pool, f"participant:{pid}:{referrer}") == {"USD": 0}
    # A new referral brings the count back to 2: the milestone is granted again, once.
    again = conversion(pid, referrer)
    await convert(pool, again)
    await convert(pool, conversion(pid, referrer))  # 3 referrals: nothing more to reach
    milestones = [r for r in await rewards_of(pool, pid) if r["rule"] == "milestone:2"]
    assert [(r["status"], r["conversion_id"]) for r in milestones] == [
        ("reversed", made[1].conversion_id),
        ("issued", again.conversion_id),
    ]
    assert await balance(pool, f"participant:{pid}:{referrer}") == {"USD": 1000}
    reached = await pool.fetch("SELECT payload FROM outbox WHERE topic = 'milestone.reached'")
    assert len(reached) == 2
    await assert_ledger_balanced(pool)


async def test_the_policy_of_the_version_that_granted_the_milestone_applies(
    pool: asyncpg.Pool,
) -> None:
    pid, referrer, made = await _two_referrals_and_a_milestone(
        pool, {**MILESTONE, "milestone_reversal": "keep"}
    )
    # A later version would reverse it; the milestone was granted under "keep".
    await publish(
        pool,
        pid,
        {**MILESTONE, "milestone_reversal": "reverse"},
        version=2,
        effective_from=T0 + timedelta(hours=1),
    )
    await apply(pool, consumers.on_referral_reversed, reversal(made[0]))
    [milestone] = [r for r in await rewards_of(pool, pid) if r["rule"] == "milestone:2"]
    assert milestone["status"] == "issued"
    assert await balance(pool, f"participant:{pid}:{referrer}") == {"USD": 1000}
