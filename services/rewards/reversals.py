"""Taking rewards back with new ledger entries, never by editing old ones: refunds (full or
partial), the milestones a full refund brings out of reach, and an admin's cancel. Before a
reward reached its recipient (pending, available, capped) it is ``cancelled``; after, it is
``clawed_back``, in full (the balance may go negative) or only what the recipient still
holds, per the policy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import asyncpg

from services.rewards import events, ledger, lifecycle
from services.rewards import repository as repo
from services.rewards.events import Reward
from services.rewards.metrics import REWARDS_REVERSED
from services.rewards.rules import milestone_reversed, milestone_threshold
from shared.contracts import ReferralReversed
from shared.contracts.sections.rewards import RewardPolicy
from shared.http.problems import Problem

Kind = Literal["cancelled", "clawed_back"]


async def refund(conn: asyncpg.Connection, event: ReferralReversed) -> None:
    """A full refund cancels what is still on hold and claws back what was issued, then takes
    back the milestones the referrer no longer reaches (per the program's policy). A partial
    refund shrinks percentage rewards in proportion (fixed rewards are per converted
    referral and stay; the referral still counts)."""
    await repo.locks.lock_referrer(conn, event.program_id, event.referrer_id)
    await repo.conversions.insert_reversal(conn, event)
    if not event.full:
        await _partial_refund(conn, event)
        return
    await repo.conversions.mark_reversed(conn, event.conversion_id)
    now = datetime.now(UTC)
    for reward_id in await repo.rewards.base_of_conversion(conn, event.conversion_id):
        reward = await repo.rewards.load_for_update(conn, reward_id)
        if reward is None:
            continue
        policy = await repo.programs.policy_of_reward(conn, reward)
        await _reverse(conn, reward, policy=policy, now=now)
    await _reverse_milestones_out_of_reach(conn, event.program_id, event.referrer_id, now)


async def _reverse_milestones_out_of_reach(
    conn: asyncpg.Connection, program_id: UUID, referrer_id: UUID, now: datetime
) -> None:
    """The referrer's milestones above what they now count, taken back as the policy of the
    version that granted each says (the caller holds the referrer's lock)."""
    count = await repo.conversions.converted_count(conn, program_id, referrer_id)
    for reward_id in await repo.rewards.milestones_held(conn, program_id, referrer_id, above=count):
        reward = await repo.rewards.load_for_update(conn, reward_id)
        if reward is None:
            continue
        policy = await repo.programs.policy_of_reward(conn, reward)
        if milestone_reversed(
            threshold=milestone_threshold(reward["rule"]),
            converted_count=count,
            status=reward["status"],
            policy=policy.milestone_reversal,
        ):
            await _reverse(conn, reward, policy=policy, now=now)


async def cancel(pool: asyncpg.Pool, program_id: UUID, reward_id: UUID) -> None:
    """An admin cancels a reward that has not reached the participant yet."""
    async with pool.acquire() as conn, conn.transaction():
        reward = await lifecycle.reward_of_program(conn, program_id, reward_id)
        if reward["status"] not in ("pending", "available", "capped"):
            raise Problem(
                409,
                "reward-not-cancellable",
                f"The reward is {reward['status']}; an issued reward is reversed by a refund",
                field="reward_id",
            )
        policy = await repo.programs.policy_of_reward(conn, reward)
        await _reverse(conn, reward, policy=policy, now=datetime.now(UTC))


async def _partial_refund(conn: asyncpg.Connection, event: ReferralReversed) -> None:
    conversion = await repo.conversions.get_for_update(conn, event.conversion_id)
    if conversion is None or conversion["status"] != "rewarded" or conversion["amount"] <= 0:
        return  # not rewarded yet: it will be computed on what is left then
    refunded = await repo.conversions.partly_refunded(conn, event.conversion_id)
    left = max(0, conversion["amount"] - refunded)
    now = datetime.now(UTC)
    for reward_id in await repo.rewards.base_of_conversion(conn, event.conversion_id):
        reward = await repo.rewards.load_for_update(conn, reward_id)
        if reward is None:
            continue
        policy = await repo.programs.policy_of_reward(conn, reward)
        side = policy.referrer if reward["side"] == "referrer" else policy.referee
        if side is None or side.percent_bp is None:
            continue
        # What was granted before any partial refund, then scaled to what is left.
        granted = reward["amount"] + await ledger.taken_by_adjustments(conn, reward_id)
        await _reduce(
            conn,
            reward,
            target=granted * left // conversion["amount"],
            entry_kind=f"adjust:{event.refund_id}",
            policy=policy,
            now=now,
        )


async def _reverse(
    conn: asyncpg.Connection, reward: Reward, *, policy: RewardPolicy, now: datetime
) -> None:
    """Undo a whole reward (nothing to undo once reversed or failed)."""
    status = reward["status"]
    if status in ("reversed", "failed"):
        return
    amount = reward["amount"]
    kind: Kind
    if status in ("pending", "available"):
        kind = "cancelled"
        await ledger.take_back(
            conn, reward, "cancel", from_pending=status == "pending", amount=amount
        )
    elif status == "capped":
        kind = "cancelled"
    else:
        kind = "clawed_back"
        if policy.clawback == "available_only":
            amount = max(0, min(amount, await ledger.held(conn, reward)))
        await ledger.take_back(conn, reward, "clawback", from_pending=False, amount=amount)
    await repo.rewards.mark_reversed(conn, reward["id"], now)
    await events.announce(conn, events.reward_reversed(reward, amount, kind, now))
    REWARDS_REVERSED.labels(kind).inc()


async def _reduce(
    conn: asyncpg.Connection,
    reward: Reward,
    *,
    target: int,
    entry_kind: str,
    policy: RewardPolicy,
    now: datetime,
) -> None:
    """A partial refund of a percentage reward: bring its amount down to ``target`` with a
    new entry. The reward keeps its state; its ``amount`` is what is left."""
    status = reward["status"]
    take = reward["amount"] - max(0, target)
    if status in ("reversed", "failed", "capped") or take <= 0:
        return
    kind: Kind = "cancelled" if status in ("pending", "available") else "clawed_back"
    if kind == "clawed_back" and policy.clawback == "available_only":
        take = max(0, min(take, await ledger.held(conn, reward)))
    if take == 0:
        return
    await ledger.take_back(conn, reward, entry_kind, from_pending=status == "pending", amount=take)
    await repo.rewards.reduce_amount(conn, reward["id"], take)
    await events.announce(conn, events.reward_reversed(reward, take, kind, now))
    REWARDS_REVERSED.labels(f"partial_{kind}").inc()
