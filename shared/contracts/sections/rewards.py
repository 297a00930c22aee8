"""Program section owned by rewards: what each side gets, when, up to how much, and how it
reaches them. ``{"referrer": {"amount": 2000, "unit": "USD"}, "referee": {...}}`` stays valid:
every other field is optional."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.base import MinorUnits, UnitCode


class Tier(BaseModel):
    """From ``min_converted`` converted referrals already made by the referrer on, this
    side gets ``amount`` instead of the base amount (the highest tier reached wins)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_converted: int = Field(ge=1)
    amount: MinorUnits


class SideReward(BaseModel):
    """One side's reward for one converted referral: a fixed ``amount``, or ``percent_bp``
    basis points (1/100 %) of the conversion amount, at most ``max_amount``. Caps bound what
    one recipient can receive (``lifetime_cap`` in total, ``monthly_cap`` per calendar month
    UTC of the purchases, counted when they happened, not when they arrived)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: MinorUnits = 0
    unit: UnitCode
    percent_bp: int | None = Field(default=None, ge=1, le=100_000)
    max_amount: MinorUnits | None = None
    tiers: list[Tier] = []
    lifetime_cap: MinorUnits | None = None
    monthly_cap: MinorUnits | None = None


MilestoneReversal = Literal["before_issue", "reverse", "keep"]


class Milestone(BaseModel):
    """Reaching ``threshold`` converted referrals grants, once, a named ``perk`` or an
    ``amount`` of ``unit``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: int = Field(ge=1)
    perk: str | None = Field(default=None, min_length=1, max_length=200)
    amount: MinorUnits | None = None
    unit: UnitCode | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Milestone:
        if (self.perk is None) == (self.amount is None):
            raise ValueError("a milestone grants either a perk or an amount")
        if self.amount is not None and self.unit is None:
            raise ValueError("a milestone amount needs a unit")
        return self


class Fulfilment(BaseModel):
    """How an available reward reaches its recipient: an internal balance (``ledger``), a
    signed call to the company (``webhook``), or a code from an uploaded pool
    (``coupon_pool``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ledger", "webhook", "coupon_pool"] = "ledger"
    webhook_url: str | None = None
    max_attempts: int = Field(default=6, ge=1, le=20)
    # First retry after this many seconds, doubling each time.
    backoff_seconds: float = Field(default=30.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _url_for_webhook(self) -> Fulfilment:
        if self.kind == "webhook" and not self.webhook_url:
            raise ValueError("webhook fulfilment needs a webhook_url")
        return self


class RewardPolicy(BaseModel):
    """What each side gets for one converted referral, and the rules around it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    referrer: SideReward | None = None
    referee: SideReward | None = None
    milestones: list[Milestone] = []
    # Program budget: the total that may be granted in ``budget.unit`` across participants.
    budget: MinorUnits | None = None
    budget_unit: UnitCode | None = None
    # Days a reward stays pending before it becomes available (fractions allowed).
    hold_days: float = Field(default=0.0, ge=0, le=3650)
    # Reward recurring purchases (sequence 2, 3...) too, not only the first.
    recurring: bool = False
    fulfilment: Fulfilment = Fulfilment()
    # On a refund after issue: take back the full amount even into a negative balance, or
    # only what the participant still holds.
    clawback: Literal["allow_negative", "available_only"] = "allow_negative"
    # When full refunds bring the referrer's converted referrals below a milestone's threshold:
    # ``before_issue`` takes the milestone back while it has not reached the referrer yet
    # (pending, available, capped) and keeps it once issued; ``reverse`` also claws back an
    # issued one (per ``clawback``); ``keep`` never takes one back.
    milestone_reversal: MilestoneReversal = "before_issue"

    @model_validator(mode="after")
    def _distinct_milestones(self) -> RewardPolicy:
        thresholds = [m.threshold for m in self.milestones]
        if len(thresholds) != len(set(thresholds)):
            raise ValueError("milestone thresholds must be distinct")
        if (self.budget is None) != (self.budget_unit is None):
            raise ValueError("budget and budget_unit go together")
        return self
