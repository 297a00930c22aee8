"""A reward's states and the ledger entries and events of each transition.

pending ──(hold over / approve)──▶ available ──(fulfilled)──▶ issued
   │                                   │
   └──(refund / cancel)──▶ reversed ◀──┘ (refund after issue: clawed back)
capped: a cap left nothing to grant.  failed: fulfilment gave up (webhook, empty pool).

Every function runs inside the caller's transaction with the reward row locked."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.rewards import ledger
from services.rewards.metrics import (
    CONVERSION_TO_ISSUED,
    COUPON_POOL_EMPTY,
    REWARDS_FAILED,
    REWARDS_ISSUED,
    REWARDS_REVERSED,
)
from services.rewards.rules import policy_of
from shared.contracts import RewardFailed, RewardIssued, RewardReversed
from shared.contracts.sections.rewards import RewardPolicy
from shared.messaging.outbox import enqueue

log = logging.getLogger(__name__)
SOURCE = "/services/rewards"

# A reward row with its conversion's referral_id and converted_at (a Record or a dict).
Reward = Mapping[str, Any]

REWARD_SQL = (
    "SELECT r.*, c.referral_id, c.converted_at FROM rewards r "
    "JOIN conversions c USING (conversion_id) WHERE r.id = $1"
)


async def load(conn: asyncpg.Connection, reward_id: UUID) -> asyncpg.Record | None:
    """The reward with its conversion's facts, row-locked for a transition."""
    return await conn.fetchrow(REWARD_SQL + " FOR UPDATE OF r", reward_id)


async def policy_for(conn: asyncpg.Connection, reward: Reward) -> RewardPolicy:
    definition = await conn.fetchval(
        "SELECT definition FROM program_versions WHERE program_id = $1 AND version = $2",
        reward["program_id"],
        reward["program_version"],
    )
    return policy_of(definition or {}, reward["variant"])


def _holder_account(reward: Reward) -> str:
    return ledger.recipient_account(reward["program_id"], reward["side"], reward["recipient"])


def _pending_account(reward: Reward) -> str:
    return ledger.pending_account(reward["program_id"], reward["side"], reward["recipient"])


def initial_state(amount: int, hold: timedelta, fulfilment: str) -> str:
    """Where a new reward starts: ``capped`` (nothing left under the caps), ``pending`` (on
    hold), ``issued`` (internal balance, no hold) or ``available`` (another channel)."""
    if amount == 0:
        return "capped"
    if hold > timedelta(0):
        return "pending"
    return "issued" if fulfilment == "ledger" else "available"


def first_entry(reward: Reward) -> tuple[str, str, str] | None:
    """(kind, debit, credit) of a new reward's first ledger entry; None when capped."""
    status = reward["status"]
    if status == "capped":
        return None
    program = ledger.program_account(reward["program_id"])
    if status == "pending":
        return "accrue", program, _pending_account(reward)
    return "issue", program, _holder_account(reward)


async def record_grant(conn: asyncpg.Connection, reward: Reward, *, now: datetime) -> None:
    """A new reward's first entry and what follows from its initial state (the row was
    inserted in that state already)."""
    entry = first_entry(reward)
    if entry is None:
        return
    kind, debit, credit = entry
    await ledger.post(
        conn,
        reward_id=reward["id"],
        kind=kind,
        debit=debit,
        credit=credit,
        amount=reward["amount"],
        unit=reward["unit"],
    )
    await after_first_entry(conn, reward, now=now)


async def after_first_entry(conn: asyncpg.Connection, reward: Reward, *, now: datetime) -> None:
    """What follows a new reward's first entry: announce it, or hand out its coupon."""
    status = reward["status"]
    if status == "issued":
        await _announce_issued(conn, reward, now=now, coupon_code=None)
    elif reward["fulfilment"] == "coupon_pool":
        await _hand_out_coupon(conn, reward, now=now)


async def release(conn: asyncpg.Connection, reward_id: UUID, *, now: datetime) -> bool:
    """End of the hold (or an admin's approval): pending → available, then fulfil."""
    reward = await load(conn, reward_id)
    if reward is None or reward["status"] != "pending":
        return False
    await ledger.post(
        conn,
        reward_id=reward_id,
        kind="release",
        debit=_pending_account(reward),
        credit=_holder_account(reward),
        amount=reward["amount"],
        unit=reward["unit"],
    )
    await make_available(conn, reward, now=now)
    return True


async def make_available(conn: asyncpg.Connection, reward: Reward, *, now: datetime) -> None:
    """The recipient's account holds the reward: deliver it through the program's channel.
    ``ledger`` is delivered now; a ``coupon_pool`` code is claimed now; a ``webhook`` call is
    left to the scheduler (no network call inside a consumer's transaction)."""
    if reward["fulfilment"] == "ledger":
        await mark_issued(conn, reward, now=now)
        return
    await conn.execute(
        "UPDATE rewards SET status = 'available', available_at = coalesce(available_at, $2), "
        "next_attempt_at = $2 WHERE id = $1",
        reward["id"],
        now,
    )
    if reward["fulfilment"] == "coupon_pool":
        await _hand_out_coupon(conn, reward, now=now)


async def _hand_out_coupon(conn: asyncpg.Connection, reward: Reward, *, now: datetime) -> None:
    code = await conn.fetchval(
        "UPDATE coupon_codes SET reward_id = $1, claimed_at = $3 WHERE id = ("
        "  SELECT id FROM coupon_codes WHERE program_id = $2 AND reward_id IS NULL "
        "  ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
        ") RETURNING code",
        reward["id"],
        reward["program_id"],
        now,
    )
    if code is None:
        COUPON_POOL_EMPTY.labels(str(reward["program_id"])).inc()
        log.warning(
            "coupon pool of program %s is empty: reward %s failed",
            reward["program_id"],
            reward["id"],
        )
        await fail(conn, reward, "coupon_pool_empty", now=now)
        return
    await payout(conn, reward, "coupon")
    await mark_issued(conn, reward, now=now, coupon_code=code)


async def payout(conn: asyncpg.Connection, reward: Reward, channel: str) -> None:
    """The reward left the platform (a coupon, a company's system): off the balance."""
    await ledger.post(
        conn,
        reward_id=reward["id"],
        kind="payout",
        debit=_holder_account(reward),
        credit=ledger.payout_account(reward["program_id"], channel),
        amount=reward["amount"],
        unit=reward["unit"],
    )


async def mark_issued(
    conn: asyncpg.Connection,
    reward: Reward,
    *,
    now: datetime,
    coupon_code: str | None = None,
) -> None:
    await conn.execute(
        "UPDATE rewards SET status = 'issued', issued_at = $2, coupon_code = $3, "
        "available_at = coalesce(available_at, $2), next_attempt_at = NULL WHERE id = $1",
        reward["id"],
        now,
        coupon_code,
    )
    await _announce_issued(conn, reward, now=now, coupon_code=coupon_code)


async def _announce_issued(
    conn: asyncpg.Connection, reward: Reward, *, now: datetime, coupon_code: str | None
) -> None:
    await enqueue(
        conn,
        RewardIssued(
            reward_id=reward["id"],
            conversion_id=reward["conversion_id"],
            referral_id=reward["referral_id"],
            program_id=reward["program_id"],
            program_version=reward["program_version"],
            referrer_id=reward["referrer_id"],
            side=reward["side"],
            recipient=reward["recipient"],
            amount=reward["amount"],
            unit=reward["unit"],
            issued_at=now,
            variant=reward["variant"],
            rule=reward["rule"],
            perk=reward["perk"],
            coupon_code=coupon_code,
        ),
        source=SOURCE,
    )
    REWARDS_ISSUED.labels(reward["fulfilment"]).inc()
    CONVERSION_TO_ISSUED.observe(max(0.0, (now - reward["converted_at"]).total_seconds()))


async def fail(conn: asyncpg.Connection, reward: Reward, reason: str, *, now: datetime) -> None:
    """Fulfilment gave up: the amount goes back to the program, visibly."""
    await ledger.post(
        conn,
        reward_id=reward["id"],
        kind="failed",
        debit=_holder_account(reward),
        credit=ledger.program_account(reward["program_id"]),
        amount=reward["amount"],
        unit=reward["unit"],
    )
    await conn.execute(
        "UPDATE rewards SET status = 'failed', failure_reason = $2, next_attempt_at = NULL "
        "WHERE id = $1",
        reward["id"],
        reason,
    )
    await enqueue(
        conn,
        RewardFailed(
            reward_id=reward["id"],
            program_id=reward["program_id"],
            referrer_id=reward["referrer_id"],
            side=reward["side"],
            recipient=reward["recipient"],
            amount=reward["amount"],
            unit=reward["unit"],
            reason=reason,
            failed_at=now,
        ),
        source=SOURCE,
    )
    REWARDS_FAILED.labels(reason).inc()


async def reverse(
    conn: asyncpg.Connection, reward: Reward, *, policy: RewardPolicy, now: datetime
) -> str | None:
    """Undo a reward with new entries. Before it reached the recipient (pending, available,
    capped) it is ``cancelled``; after, it is ``clawed_back``: in full (the balance may go
    negative) or only what the recipient still holds, per the policy. Returns the kind."""
    status = reward["status"]
    if status in ("reversed", "failed"):
        return None
    amount = reward["amount"]
    if status == "pending":
        kind = "cancelled"
        await _post_back(conn, reward, "cancel", _pending_account(reward), amount)
    elif status == "available":
        kind = "cancelled"
        await _post_back(conn, reward, "cancel", _holder_account(reward), amount)
    elif status == "capped":
        kind = "cancelled"
    else:
        kind = "clawed_back"
        if policy.clawback == "available_only":
            held = await ledger.balance(conn, _holder_account(reward), reward["unit"])
            amount = max(0, min(amount, held))
        await _post_back(conn, reward, "clawback", _holder_account(reward), amount)
    await conn.execute(
        "UPDATE rewards SET status = 'reversed', reversed_at = $2, next_attempt_at = NULL "
        "WHERE id = $1",
        reward["id"],
        now,
    )
    await _announce_reversal(conn, reward, amount, kind, now)
    REWARDS_REVERSED.labels(kind).inc()
    return kind


async def reduce(
    conn: asyncpg.Connection,
    reward: Reward,
    *,
    target: int,
    entry_kind: str,
    policy: RewardPolicy,
    now: datetime,
) -> int:
    """A partial refund of a percentage reward: bring its amount down to ``target`` with a
    new entry (``cancelled`` while it has not reached the recipient, else ``clawed_back``).
    The reward keeps its state; its ``amount`` is what is left. Returns what was taken."""
    status = reward["status"]
    take = reward["amount"] - max(0, target)
    if status in ("reversed", "failed", "capped") or take <= 0:
        return 0
    if status == "pending":
        kind, account = "cancelled", _pending_account(reward)
    elif status == "available":
        kind, account = "cancelled", _holder_account(reward)
    else:
        kind, account = "clawed_back", _holder_account(reward)
        if policy.clawback == "available_only":
            held = await ledger.balance(conn, account, reward["unit"])
            take = max(0, min(take, held))
    if take == 0:
        return 0
    await _post_back(conn, reward, entry_kind, account, take)
    await conn.execute("UPDATE rewards SET amount = amount - $2 WHERE id = $1", reward["id"], take)
    await _announce_reversal(conn, reward, take, kind, now)
    REWARDS_REVERSED.labels(f"partial_{kind}").inc()
    return take


async def _announce_reversal(
    conn: asyncpg.Connection, reward: Reward, amount: int, kind: str, now: datetime
) -> None:
    await enqueue(
        conn,
        RewardReversed(
            reward_id=reward["id"],
            conversion_id=reward["conversion_id"],
            program_id=reward["program_id"],
            referrer_id=reward["referrer_id"],
            side=reward["side"],
            recipient=reward["recipient"],
            amount=amount,
            unit=reward["unit"],
            kind=kind,  # type: ignore[arg-type]
            reversed_at=now,
        ),
        source=SOURCE,
    )


async def _post_back(
    conn: asyncpg.Connection, reward: Reward, kind: str, account: str, amount: int
) -> None:
    if amount <= 0:
        return
    await ledger.post(
        conn,
        reward_id=reward["id"],
        kind=kind,
        debit=account,
        credit=ledger.program_account(reward["program_id"]),
        amount=amount,
        unit=reward["unit"],
    )


def now_utc() -> datetime:
    return datetime.now(UTC)


def as_dict(reward: Reward) -> dict[str, Any]:
    return dict(reward)
