"""Request and response bodies of the rewards HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.base import UnitCode
from shared.http.openapi import JsonInt


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


class RewardActionOut(BaseModel):
    id: UUID
    status: str


class RedemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: JsonInt = Field(gt=0, le=10**12)
    unit: UnitCode


class RedemptionOut(BaseModel):
    id: UUID
    amount: int
    unit: str
    balance: int


# A code: up to 200 characters, at least one of them not whitespace (stripped when stored),
# none of them NUL (Postgres cannot store it).
COUPON_CODE = r"^[^\x00]*[^\x00\s][^\x00]*$"
CouponCode = Annotated[str, Field(min_length=1, max_length=200, pattern=COUPON_CODE)]


class CouponsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    codes: list[CouponCode] = Field(min_length=1, max_length=10_000)


class CouponsOut(BaseModel):
    added: int
    available: int


class SecretOut(BaseModel):
    program_id: UUID
    webhook_secret: str
