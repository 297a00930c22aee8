"""Rewards HTTP API: a participant's balance, rewards and progress (the scoreboard); program
totals; admin approve/cancel; redemption; coupon upload; the webhook signing secret."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from services.rewards import ledger, lifecycle, scheduler
from services.rewards.issuing import lock_referrer
from services.rewards.rules import next_milestone, policy_of
from shared.contracts.base import MinorUnits, UnitCode
from shared.http.auth import require_admin, require_program_access
from shared.http.idempotency import run_idempotent
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["rewards"])


class RewardOut(BaseModel):
    id: UUID
    conversion_id: UUID
    rule: str
    side: str
    amount: int
    requested_amount: int | None
    unit: str
    perk: str | None
    status: str
    program_version: int
    variant: str | None
    fulfilment: str
    coupon_code: str | None
    available_at: datetime | None
    issued_at: datetime | None
    failure_reason: str | None


class MilestoneOut(BaseModel):
    threshold: int
    perk: str | None = None
    amount: int | None = None
    unit: str | None = None
    reached: bool


class ProgressOut(BaseModel):
    converted: int
    milestones: list[MilestoneOut]
    next_milestone: MilestoneOut | None
    remaining_to_next: int | None


class BalanceOut(BaseModel):
    participant_id: UUID
    # What the participant holds now (available, redeemable), per unit.
    balances: dict[str, int]
    # Granted but still on hold, per unit.
    pending: dict[str, int]
    rewards: list[RewardOut]
    progress: ProgressOut


_REWARD_COLUMNS = (
    "id, conversion_id, rule, side, amount, requested_amount, unit, perk, status, "
    "program_version, variant, fulfilment, coupon_code, available_at, issued_at, failure_reason"
)


async def _current_policy(pool: asyncpg.Pool, program_id: UUID, variant: str | None) -> Any:
    definition = await pool.fetchval(
        "SELECT definition FROM program_versions WHERE program_id = $1 AND effective_from <= now() "
        "ORDER BY version DESC LIMIT 1",
        program_id,
    )
    return policy_of(definition or {}, variant)


@router.get(
    "/programs/{program_id}/participants/{participant_id}/rewards",
    response_model=BalanceOut,
    dependencies=[Depends(require_program_access)],
)
async def participant_rewards(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    rt = runtime_of(request)
    rows = await rt.pool.fetch(
        f"SELECT {_REWARD_COLUMNS} FROM rewards "
        "WHERE program_id = $1 AND side = 'referrer' AND recipient = $2 ORDER BY created_at, rule",
        program_id,
        str(participant_id),
    )
    converted = await rt.pool.fetchval(
        "SELECT count(DISTINCT referral_id) FROM conversions "
        "WHERE program_id = $1 AND referrer_id = $2 AND status = 'rewarded'",
        program_id,
        participant_id,
    )
    variant = await rt.pool.fetchval(
        "SELECT variant FROM conversions WHERE program_id = $1 AND referrer_id = $2 "
        "ORDER BY converted_at DESC LIMIT 1",
        program_id,
        participant_id,
    )
    policy = await _current_policy(rt.pool, program_id, variant)
    reached = {r["rule"] for r in rows if r["rule"].startswith("milestone:")}

    def milestone_out(m: Any) -> MilestoneOut:
        return MilestoneOut(
            threshold=m.threshold,
            perk=m.perk,
            amount=m.amount,
            unit=m.unit,
            reached=f"milestone:{m.threshold}" in reached,
        )

    upcoming = next_milestone(policy, int(converted))
    pending = await ledger.balances(
        rt.pool, ledger.pending_account(program_id, "referrer", str(participant_id))
    )
    return BalanceOut(
        participant_id=participant_id,
        balances=await ledger.balances(
            rt.pool, ledger.recipient_account(program_id, "referrer", str(participant_id))
        ),
        pending={u: v for u, v in pending.items() if v},
        rewards=[RewardOut(**dict(r)) for r in rows],
        progress=ProgressOut(
            converted=int(converted),
            milestones=[
                milestone_out(m) for m in sorted(policy.milestones, key=lambda m: m.threshold)
            ],
            next_milestone=milestone_out(upcoming) if upcoming else None,
            remaining_to_next=upcoming.threshold - int(converted) if upcoming else None,
        ),
    )


class UnitTotals(BaseModel):
    issued: int = 0
    pending: int = 0
    available: int = 0
    capped_requested: int = 0
    reversed: int = 0
    failed: int = 0
    # What the program still owes participants and referees (held or pending), per the ledger.
    liability: int = 0


class BudgetOut(BaseModel):
    amount: int
    unit: str
    used: int
    left: int


class TotalsOut(BaseModel):
    program_id: UUID
    units: dict[str, UnitTotals]
    budget: BudgetOut | None


@router.get(
    "/programs/{program_id}/reward-totals",
    response_model=TotalsOut,
    dependencies=[Depends(require_program_access)],
)
async def program_totals(program_id: UUID, request: Request) -> Any:
    rt = runtime_of(request)
    rows = await rt.pool.fetch(
        "SELECT unit, status, sum(amount) AS amount, "
        "sum(coalesce(requested_amount, amount) - amount) AS cut FROM rewards "
        "WHERE program_id = $1 GROUP BY unit, status",
        program_id,
    )
    units: dict[str, UnitTotals] = {}
    for r in rows:
        totals = units.setdefault(r["unit"], UnitTotals())
        if r["status"] in ("issued", "pending", "available", "reversed", "failed"):
            setattr(totals, r["status"], getattr(totals, r["status"]) + int(r["amount"]))
        totals.capped_requested += int(r["cut"])
    liabilities = await rt.pool.fetch(
        "SELECT unit, -sum(amount) AS owed FROM ledger_postings "
        "WHERE account LIKE ANY($1::text[]) GROUP BY unit",
        ledger.liability_prefixes(program_id),
    )
    for r in liabilities:
        units.setdefault(r["unit"], UnitTotals()).liability = int(r["owed"])
    policy = await _current_policy(rt.pool, program_id, None)
    budget = None
    if policy.budget is not None and policy.budget_unit is not None:
        used = await rt.pool.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM rewards WHERE program_id = $1 AND unit = $2 "
            "AND status <> 'reversed'",
            program_id,
            policy.budget_unit,
        )
        budget = BudgetOut(
            amount=policy.budget,
            unit=policy.budget_unit,
            used=int(used),
            left=max(0, policy.budget - int(used)),
        )
    return TotalsOut(program_id=program_id, units=units, budget=budget)


class RewardActionOut(BaseModel):
    id: UUID
    status: str


async def _reward_of_program(conn: asyncpg.Connection, program_id: UUID, reward_id: UUID) -> Any:
    head = await conn.fetchrow(
        "SELECT program_id, referrer_id FROM rewards WHERE id = $1", reward_id
    )
    if head is None or head["program_id"] != program_id:
        raise Problem(404, "reward-not-found", f"No reward {reward_id}", field="reward_id")
    await lock_referrer(conn, program_id, head["referrer_id"])
    return await lifecycle.load(conn, reward_id)


@router.post(
    "/programs/{program_id}/rewards/{reward_id}/approve",
    response_model=RewardActionOut,
    dependencies=[Depends(require_program_access)],
)
async def approve_reward(program_id: UUID, reward_id: UUID, request: Request) -> Any:
    """End a reward's hold now (it becomes available and is fulfilled)."""
    rt = runtime_of(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        reward = await _reward_of_program(conn, program_id, reward_id)
        if reward["status"] != "pending":
            raise Problem(
                409, "reward-not-pending", f"The reward is {reward['status']}", field="reward_id"
            )
        await scheduler.approve(conn, reward_id)
        status = await conn.fetchval("SELECT status FROM rewards WHERE id = $1", reward_id)
    return RewardActionOut(id=reward_id, status=status)


@router.post(
    "/programs/{program_id}/rewards/{reward_id}/cancel",
    response_model=RewardActionOut,
    dependencies=[Depends(require_program_access)],
)
async def cancel_reward(program_id: UUID, reward_id: UUID, request: Request) -> Any:
    """Cancel a reward that has not reached the participant yet (pending or available)."""
    rt = runtime_of(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        reward = await _reward_of_program(conn, program_id, reward_id)
        if reward["status"] not in ("pending", "available", "capped"):
            raise Problem(
                409,
                "reward-not-cancellable",
                f"The reward is {reward['status']}; an issued reward is reversed by a refund",
                field="reward_id",
            )
        policy = await lifecycle.policy_for(conn, reward)
        await lifecycle.reverse(conn, reward, policy=policy, now=lifecycle.now_utc())
    return RewardActionOut(id=reward_id, status="reversed")


class RedemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MinorUnits = Field(gt=0)
    unit: UnitCode


class RedemptionOut(BaseModel):
    id: UUID
    amount: int
    unit: str
    balance: int


@router.post(
    "/programs/{program_id}/participants/{participant_id}/redemptions",
    status_code=201,
    response_model=RedemptionOut,
    dependencies=[Depends(require_program_access)],
)
async def redeem(
    program_id: UUID,
    participant_id: UUID,
    body: RedemptionIn,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Any:
    """Spend part of a participant's balance (e.g. as store credit at checkout)."""
    rt = runtime_of(request)
    account = ledger.recipient_account(program_id, "referrer", str(participant_id))

    async def effect(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        await lock_referrer(conn, program_id, participant_id)
        held = await ledger.balance(conn, account, body.unit)
        if held < body.amount:
            raise Problem(
                409,
                "insufficient-balance",
                f"The balance is {held} {body.unit}",
                field="amount",
            )
        redemption_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO redemptions (id, program_id, participant_id, amount, unit) "
            "VALUES ($1, $2, $3, $4, $5)",
            redemption_id,
            program_id,
            participant_id,
            body.amount,
            body.unit,
        )
        await ledger.post(
            conn,
            reward_id=None,
            redemption_id=redemption_id,
            kind="redeem",
            debit=account,
            credit=ledger.payout_account(program_id, "redemption"),
            amount=body.amount,
            unit=body.unit,
        )
        out = RedemptionOut(
            id=redemption_id, amount=body.amount, unit=body.unit, balance=held - body.amount
        )
        return 201, out.model_dump(mode="json")

    return await run_idempotent(
        rt.pool,
        scope=f"rewards:redeem:{program_id}:{participant_id}",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=effect,
    )


class CouponsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    codes: list[str] = Field(min_length=1, max_length=10_000)


class CouponsOut(BaseModel):
    added: int
    available: int


@router.post(
    "/programs/{program_id}/coupons",
    status_code=201,
    response_model=CouponsOut,
    dependencies=[Depends(require_program_access)],
)
async def upload_coupons(program_id: UUID, body: CouponsIn, request: Request) -> Any:
    """Add codes to the program's pool; a code already in the pool is not added twice."""
    codes = [c.strip() for c in body.codes]
    for i, code in enumerate(codes):
        if not code or len(code) > 200:
            raise Problem(422, "invalid-coupon", "A code is 1-200 characters", field=f"codes.{i}")
    rt = runtime_of(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        added = await conn.fetchval(
            "WITH ins AS (INSERT INTO coupon_codes (program_id, code) "
            "SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING 1) "
            "SELECT count(*) FROM ins",
            program_id,
            codes,
        )
        available = await conn.fetchval(
            "SELECT count(*) FROM coupon_codes WHERE program_id = $1 AND reward_id IS NULL",
            program_id,
        )
    return CouponsOut(added=int(added), available=int(available))


class SecretOut(BaseModel):
    program_id: UUID
    webhook_secret: str


@router.get(
    "/programs/{program_id}/webhook-secret",
    response_model=SecretOut,
    dependencies=[Depends(require_admin)],
)
async def webhook_secret(program_id: UUID, request: Request) -> Any:
    """The secret that signs this program's fulfilment webhooks (verify with any Standard
    Webhooks library). It exists once a version with webhook fulfilment was published."""
    secret = await runtime_of(request).pool.fetchval(
        "SELECT webhook_secret FROM program_secrets WHERE program_id = $1", program_id
    )
    if secret is None:
        raise Problem(
            404, "no-webhook-secret", "This program has no webhook fulfilment", field="program_id"
        )
    return SecretOut(program_id=program_id, webhook_secret=secret)
