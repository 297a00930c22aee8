"""Spending part of a participant's balance (e.g. as store credit at checkout)."""

from __future__ import annotations

import uuid
from uuid import UUID

import asyncpg

from services.rewards import ledger
from services.rewards import repository as repo
from services.rewards.models import RedemptionOut
from shared.http.problems import Problem, not_found


async def redeem(
    conn: asyncpg.Connection, program_id: UUID, participant_id: UUID, amount: int, unit: str
) -> RedemptionOut:
    """Take ``amount`` off the participant's balance; 409 when the balance is smaller. The
    referrer lock keeps two redemptions (or a redemption and a clawback) from both spending
    the same balance."""
    if not await repo.participants.belongs(conn, participant_id, program_id):
        raise not_found("participant", participant_id, "participant_id")
    await repo.locks.lock_referrer(conn, program_id, participant_id)
    held = await ledger.participant_balance(conn, program_id, participant_id, unit)
    if held < amount:
        raise Problem(409, "insufficient-balance", f"The balance is {held} {unit}", field="amount")
    redemption_id = uuid.uuid4()
    await repo.payouts.insert_redemption(
        conn, redemption_id, program_id, participant_id, amount, unit
    )
    await ledger.redeem(conn, redemption_id, program_id, participant_id, amount, unit)
    return RedemptionOut(id=redemption_id, amount=amount, unit=unit, balance=held - amount)
