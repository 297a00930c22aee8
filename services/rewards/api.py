"""Balances and rewards of a participant."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from services.rewards import ledger
from shared.http.auth import require_program_access
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["rewards"])


class RewardOut(BaseModel):
    id: UUID
    conversion_id: UUID
    side: str
    amount: int
    unit: str
    status: str
    program_version: int


class BalanceOut(BaseModel):
    participant_id: UUID
    balances: dict[str, int]
    rewards: list[RewardOut]


@router.get(
    "/programs/{program_id}/participants/{participant_id}/rewards",
    response_model=BalanceOut,
    dependencies=[Depends(require_program_access)],
)
async def participant_rewards(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    rt = runtime_of(request)
    rows = await rt.pool.fetch(
        "SELECT id, conversion_id, side, amount, unit, status, program_version FROM rewards "
        "WHERE program_id = $1 AND side = 'referrer' AND recipient = $2 ORDER BY created_at",
        program_id,
        str(participant_id),
    )
    account = ledger.recipient_account(program_id, "referrer", str(participant_id))
    return BalanceOut(
        participant_id=participant_id,
        balances=await ledger.balances(rt.pool, account),
        rewards=[RewardOut(**dict(r)) for r in rows],
    )
