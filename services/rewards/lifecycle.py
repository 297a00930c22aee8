"""A reward's way to the recipient, and the ledger entries and events of each step.

pending ──(hold over / approve)──▶ available ──(fulfilled)──▶ issued
   │                                   │                  └──(gave up)──▶ failed
   └──(refund / cancel)──▶ reversed ◀──┘ (refund after issue: clawed back; ``reversals``)
capped: a cap left nothing to grant (``issuing`` records it so).

Every function runs inside the caller's transaction with the reward row locked."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from services.rewards import events, ledger
from services.rewards import repository as repo
from services.rewards.events import Reward
from services.rewards.metrics import (
    CONVERSION_TO_ISSUED,
    COUPON_POOL_EMPTY,
    REWARDS_FAILED,
    REWARDS_ISSUED,
    WEBHOOK_ATTEMPTS,
)
from shared.http.problems import Problem

log = logging.getLogger(__name__)


async def fulfil_new(conn: asyncpg.Connection, reward: Reward, *, now: datetime) -> None:
    """What a new reward's starting state asks for (the row and its first entry exist): an
    ``issued`` one is announced; a coupon one that is ``available`` gets its code now."""
    if reward["status"] == "issued":
        await _announce_issued(conn, reward, now=now, coupon_code=None)
    elif reward["status"] == "available" and reward["fulfilment"] == "coupon_pool":
        await _hand_out_coupon(conn, reward, now=now)


async def release(conn: asyncpg.Connection, reward_id: UUID, *, now: datetime) -> bool:
    """End of the hold (or an admin's approval): pending → available, then fulfil.
    False when the reward is not pending (any more)."""
    reward = await repo.rewards.load_for_update(conn, reward_id)
    if reward is None or reward["status"] != "pending":
        return False
    await ledger.release(conn, reward)
    await _fulfil(conn, reward, now=now)
    return True


async def approve(pool: asyncpg.Pool, program_id: UUID, reward_id: UUID) -> str:
    """An admin ends a pending reward's hold now; returns its state after."""
    async with pool.acquire() as conn, conn.transaction():
        reward = await reward_of_program(conn, program_id, reward_id)
        if reward["status"] != "pending":
            raise Problem(
                409, "reward-not-pending", f"The reward is {reward['status']}", field="reward_id"
            )
        await release(conn, reward_id, now=datetime.now(UTC))
        status = await repo.rewards.status(conn, reward_id)
    assert status is not None
    return status


async def reward_of_program(
    conn: asyncpg.Connection, program_id: UUID, reward_id: UUID
) -> asyncpg.Record:
    """A reward of the program for an admin action, its referrer locked first like every
    other change of the referrer's rewards, then the row. 404 when it is not the program's."""
    owner = await repo.rewards.owner(conn, reward_id)
    if owner is None or owner["program_id"] != program_id:
        raise Problem(404, "reward-not-found", f"No reward {reward_id}", field="reward_id")
    await repo.locks.lock_referrer(conn, program_id, owner["referrer_id"])
    reward = await repo.rewards.load_for_update(conn, reward_id)
    assert reward is not None  # rewards are never deleted
    return reward


async def _fulfil(conn: asyncpg.Connection, reward: Reward, *, now: datetime) -> None:
    """The recipient's account holds the reward: deliver it through the program's channel.
    ``ledger`` is delivered now; a ``coupon_pool`` code is claimed now; a ``webhook`` call is
    left to the scheduler (no network call inside a consumer's transaction)."""
    if reward["fulfilment"] == "ledger":
        await _mark_issued(conn, reward, now=now)
        return
    await repo.rewards.mark_available(conn, reward["id"], now)
    if reward["fulfilment"] == "coupon_pool":
        await _hand_out_coupon(conn, reward, now=now)


async def _hand_out_coupon(conn: asyncpg.Connection, reward: Reward, *, now: datetime) -> None:
    code = await repo.payouts.claim_coupon(conn, reward["program_id"], reward["id"], now)
    if code is None:
        COUPON_POOL_EMPTY.labels(str(reward["program_id"])).inc()
        log.warning(
            "coupon pool of program %s is empty: reward %s failed",
            reward["program_id"],
            reward["id"],
        )
        await _fail(conn, reward, "coupon_pool_empty", now=now)
        return
    await ledger.pay_out(conn, reward, "coupon")
    await _mark_issued(conn, reward, now=now, coupon_code=code)


async def settle_webhook_call(
    conn: asyncpg.Connection,
    reward: Reward,
    error: str | None,
    *,
    max_attempts: int,
    backoff_s: float,
    now: datetime,
) -> None:
    """The outcome of one webhook call (``error`` None: the company's endpoint accepted it):
    issued; or failed once ``max_attempts`` calls failed; else retried with exponential
    backoff."""
    attempts = reward["attempts"] + 1
    if error is None:
        WEBHOOK_ATTEMPTS.labels("delivered").inc()
        await repo.rewards.count_attempt(conn, reward["id"], attempts)
        await ledger.pay_out(conn, reward, "webhook")
        await _mark_issued(conn, reward, now=now)
        return
    log.info("webhook for reward %s failed (attempt %d): %s", reward["id"], attempts, error)
    if attempts >= max_attempts:
        WEBHOOK_ATTEMPTS.labels("gave_up").inc()
        await repo.rewards.count_attempt(conn, reward["id"], attempts)
        await _fail(conn, reward, f"webhook: {error}", now=now)
        return
    WEBHOOK_ATTEMPTS.labels("retry").inc()
    retry_at = now + timedelta(seconds=backoff_s * 2 ** (attempts - 1))
    await repo.rewards.schedule_retry(conn, reward["id"], attempts, retry_at, error)


async def _mark_issued(
    conn: asyncpg.Connection, reward: Reward, *, now: datetime, coupon_code: str | None = None
) -> None:
    await repo.rewards.mark_issued(conn, reward["id"], now, coupon_code)
    await _announce_issued(conn, reward, now=now, coupon_code=coupon_code)


async def _announce_issued(
    conn: asyncpg.Connection, reward: Reward, *, now: datetime, coupon_code: str | None
) -> None:
    await events.announce(conn, events.reward_issued(reward, now, coupon_code))
    REWARDS_ISSUED.labels(reward["fulfilment"]).inc()
    CONVERSION_TO_ISSUED.observe(max(0.0, (now - reward["converted_at"]).total_seconds()))


async def _fail(conn: asyncpg.Connection, reward: Reward, reason: str, *, now: datetime) -> None:
    """Fulfilment gave up: the amount goes back to the program, visibly."""
    await ledger.return_failed(conn, reward)
    await repo.rewards.mark_failed(conn, reward["id"], reason)
    await events.announce(conn, events.reward_failed(reward, reason, now))
    REWARDS_FAILED.labels(reason).inc()
