"""What rewards announces, written to the outbox in the caller's transaction (the relay
publishes it once that commits)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import asyncpg

from shared.contracts import (
    MilestoneReached,
    RewardCreated,
    RewardFailed,
    RewardIssued,
    RewardReversed,
)
from shared.contracts.base import Event
from shared.messaging.outbox import enqueue

SOURCE = "/services/rewards"

# A reward row with its conversion's referral_id and converted_at (a Record or a dict).
Reward = Mapping[str, Any]


async def announce(conn: asyncpg.Connection, event: Event) -> None:
    await enqueue(conn, event, source=SOURCE)


def reward_created(reward: Reward, now: datetime) -> RewardCreated:
    return RewardCreated(
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
        status=reward["status"],
        available_at=reward["available_at"],
        created_at=now,
        variant=reward["variant"],
        rule=reward["rule"],
        perk=reward["perk"],
    )


def milestone_reached(reward: Reward, threshold: int, now: datetime) -> MilestoneReached:
    perk = reward["perk"]
    return MilestoneReached(
        program_id=reward["program_id"],
        referrer_id=reward["referrer_id"],
        threshold=threshold,
        reward_id=reward["id"],
        perk=perk,
        amount=None if perk else reward["amount"],
        unit=None if perk else reward["unit"],
        reached_at=now,
    )


def reward_issued(reward: Reward, now: datetime, coupon_code: str | None) -> RewardIssued:
    return RewardIssued(
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
    )


def reward_failed(reward: Reward, reason: str, now: datetime) -> RewardFailed:
    return RewardFailed(
        reward_id=reward["id"],
        program_id=reward["program_id"],
        referrer_id=reward["referrer_id"],
        side=reward["side"],
        recipient=reward["recipient"],
        amount=reward["amount"],
        unit=reward["unit"],
        reason=reason,
        failed_at=now,
    )


def reward_reversed(
    reward: Reward, amount: int, kind: Literal["cancelled", "clawed_back"], now: datetime
) -> RewardReversed:
    return RewardReversed(
        reward_id=reward["id"],
        conversion_id=reward["conversion_id"],
        program_id=reward["program_id"],
        referrer_id=reward["referrer_id"],
        side=reward["side"],
        recipient=reward["recipient"],
        amount=amount,
        unit=reward["unit"],
        kind=kind,
        reversed_at=now,
    )
