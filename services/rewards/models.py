"""Request and response bodies of the rewards HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.base import UnitCode
from shared.http.openapi import STORABLE_TEXT, JsonInt


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
    reversed_at: datetime | None = None
    # How a reversed reward was taken back: ``cancelled`` (before it reached the recipient)
    # or ``clawed_back`` (after); null while it is not reversed.
    reversal: Literal["cancelled", "clawed_back"] | None = None


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
    # The same two as the referee of someone else's referral (a participant who was
    # referred themselves).
    referee_balances: dict[str, int] = {}
    referee_pending: dict[str, int] = {}
    # Both sides: ``side`` says whether the participant got each as referrer or referee.
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


class StatementLine(BaseModel):
    entry_id: int
    at: datetime
    # grant, release, cancel, clawback, refund_adjustment, payout, failed, redemption,
    # adjustment (``entry_kind`` is the ledger's own kind).
    kind: str
    entry_kind: str
    account: str
    # What the account is to the statement's holder (see the totals).
    role: str
    unit: str
    # What the posting adds to the account's balance (a credit is positive).
    amount: int
    # The account's balance in this unit after the posting.
    balance: int
    reward_id: UUID | None
    redemption_id: UUID | None
    adjustment_id: UUID | None
    # The key that made a manual adjustment (``admin`` or ``key:<key_id>``), and its reason.
    actor: str | None
    reason: str | None


class ParticipantStatementOut(BaseModel):
    program_id: UUID
    participant_id: UUID
    # Per role and unit, equal to the participant rewards endpoint: ``balances``, ``pending``,
    # ``referee_balances``, ``referee_pending``.
    totals: dict[str, dict[str, int]]
    lines: list[StatementLine]
    # Where the next page starts: also after the last page, to read later what was written
    # since (null only for a statement with no line yet).
    next_cursor: str | None
    has_more: bool


class ProgramStatementOut(BaseModel):
    program_id: UUID
    # Per role and unit: ``cost`` (the program's reward expense, net of reversals),
    # ``liability`` (still owed: equals reward-totals' ``liability``), ``paid_out``.
    totals: dict[str, dict[str, int]]
    lines: list[StatementLine]
    # Where the next page starts: also after the last page, to read later what was written
    # since (null only for a statement with no line yet).
    next_cursor: str | None
    has_more: bool


# Free text with at least one character that is not whitespace, storable by Postgres.
Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")]


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # goodwill: a grant (amount > 0); correction: either sign, never 0.
    kind: Literal["goodwill", "correction"]
    amount: JsonInt = Field(ge=-(10**12), le=10**12)
    unit: UnitCode
    reason: Reason
    # The client's own id for this adjustment: sending it again changes nothing.
    reference: str | None = Field(default=None, min_length=1, max_length=200, pattern=STORABLE_TEXT)


class AdjustmentOut(BaseModel):
    id: UUID
    participant_id: UUID
    kind: str
    amount: int
    unit: str
    reason: str
    actor: str
    reference: str | None
    created_at: datetime
    # The participant's balance in the unit after the adjustment.
    balance: int


class RoiFigures(BaseModel):
    # Conversions rewarded and not fully refunded.
    conversions: int
    # Their amounts net of partial refunds, per currency.
    revenue: dict[str, int]
    # What their rewards cost, net of reversals, per unit.
    reward_cost: dict[str, int]
    # (revenue - cost) / cost where a currency and a reward unit are the same, else absent.
    roi: dict[str, float]


class VariantRoi(RoiFigures):
    variant: str | None


class RoiOut(BaseModel):
    program_id: UUID
    # The whole program: its reward cost includes manual adjustments.
    program: RoiFigures
    variants: list[VariantRoi]
    adjustments: dict[str, int]
