"""Rewards HTTP API: a participant's balance, rewards and progress (the scoreboard); program
totals; admin approve/cancel; redemption; coupon upload; the webhook signing secret."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, Request

from services.rewards import coupons, lifecycle, redemption, reports, reversals
from services.rewards.models import (
    BalanceOut,
    CouponsIn,
    CouponsOut,
    RedemptionIn,
    RedemptionOut,
    RewardActionOut,
    SecretOut,
    TotalsOut,
)
from shared.http.auth import require_admin, require_program_access
from shared.http.idempotency import MAX_KEY_LENGTH, run_idempotent
from shared.http.openapi import problem_responses
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["rewards"])


@router.get(
    "/programs/{program_id}/participants/{participant_id}/rewards",
    response_model=BalanceOut,
    responses=problem_responses(404),
    dependencies=[Depends(require_program_access)],
)
async def participant_rewards(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    return await reports.participant_rewards(runtime_of(request).pool, program_id, participant_id)


@router.get(
    "/programs/{program_id}/reward-totals",
    response_model=TotalsOut,
    dependencies=[Depends(require_program_access)],
)
async def program_totals(program_id: UUID, request: Request) -> Any:
    return await reports.program_totals(runtime_of(request).pool, program_id)


@router.post(
    "/programs/{program_id}/rewards/{reward_id}/approve",
    response_model=RewardActionOut,
    responses=problem_responses(404, 409),
    dependencies=[Depends(require_program_access)],
)
async def approve_reward(program_id: UUID, reward_id: UUID, request: Request) -> Any:
    """End a reward's hold now (it becomes available and is fulfilled)."""
    status = await lifecycle.approve(runtime_of(request).pool, program_id, reward_id)
    return RewardActionOut(id=reward_id, status=status)


@router.post(
    "/programs/{program_id}/rewards/{reward_id}/cancel",
    response_model=RewardActionOut,
    responses=problem_responses(404, 409),
    dependencies=[Depends(require_program_access)],
)
async def cancel_reward(program_id: UUID, reward_id: UUID, request: Request) -> Any:
    """Cancel a reward that has not reached the participant yet (pending or available)."""
    await reversals.cancel(runtime_of(request).pool, program_id, reward_id)
    return RewardActionOut(id=reward_id, status="reversed")


@router.post(
    "/programs/{program_id}/participants/{participant_id}/redemptions",
    status_code=201,
    response_model=RedemptionOut,
    responses=problem_responses(404, 409),
    dependencies=[Depends(require_program_access)],
)
async def redeem(
    program_id: UUID,
    participant_id: UUID,
    body: RedemptionIn,
    request: Request,
    idempotency_key: str | None = Header(
        default=None, alias="Idempotency-Key", min_length=1, max_length=MAX_KEY_LENGTH
    ),
) -> Any:
    """Spend part of a participant's balance (e.g. as store credit at checkout)."""

    async def effect(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        out = await redemption.redeem(conn, program_id, participant_id, body.amount, body.unit)
        return 201, out.model_dump(mode="json")

    return await run_idempotent(
        runtime_of(request).pool,
        scope=f"rewards:redeem:{program_id}:{participant_id}",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=effect,
    )


@router.post(
    "/programs/{program_id}/coupons",
    status_code=201,
    response_model=CouponsOut,
    dependencies=[Depends(require_program_access)],
)
async def upload_coupons(program_id: UUID, body: CouponsIn, request: Request) -> Any:
    """Add codes to the program's pool; a code already in the pool is not added twice."""
    # Surrounding whitespace is not part of a code (the schema asks for one non-space).
    codes = [c.strip() for c in body.codes]
    return await coupons.add_codes(runtime_of(request).pool, program_id, codes)


@router.get(
    "/programs/{program_id}/webhook-secret",
    response_model=SecretOut,
    responses=problem_responses(404),
    dependencies=[Depends(require_admin)],
)
async def webhook_secret(program_id: UUID, request: Request) -> Any:
    """The secret that signs this program's fulfilment webhooks (verify with any Standard
    Webhooks library). It exists once a version with webhook fulfilment was published."""
    return await reports.webhook_secret(runtime_of(request).pool, program_id)
