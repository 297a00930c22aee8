"""Reward facts published by the rewards service. Keyed by the referrer id."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from shared.contracts.base import Event, MinorUnits, UnitCode


class RewardCreated(Event):
    """A conversion earned a reward: what it is and where it starts (``pending`` during a hold,
    ``available`` for an external fulfilment, ``issued`` at once on the internal ledger,
    ``capped`` when caps left nothing). Lets read models show pending rewards before they are
    issued; ``reward.issued`` follows when it reaches the participant."""

    TOPIC: ClassVar[str] = "reward.created"
    TYPE: ClassVar[str] = "reward.created.v1"

    reward_id: UUID
    conversion_id: UUID
    referral_id: UUID
    program_id: UUID
    program_version: int
    referrer_id: UUID
    side: Literal["referrer", "referee"]
    recipient: str
    amount: MinorUnits
    unit: UnitCode
    status: Literal["pending", "available", "issued", "capped"]
    available_at: datetime | None = None
    created_at: datetime
    variant: str | None = None
    rule: str | None = None
    perk: str | None = None

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)

    def subject(self) -> str:
        return f"reward/{self.reward_id}"


class RewardIssued(Event):
    TOPIC: ClassVar[str] = "reward.issued"
    TYPE: ClassVar[str] = "reward.issued.v1"

    reward_id: UUID
    conversion_id: UUID
    referral_id: UUID
    program_id: UUID
    program_version: int
    referrer_id: UUID
    side: Literal["referrer", "referee"]
    # The participant id for the referrer side, the referee's customer id for the other.
    recipient: str
    amount: MinorUnits
    unit: UnitCode
    issued_at: datetime
    variant: str | None = None
    # Which rule produced it: "base" or "milestone:<threshold>".
    rule: str | None = None
    # A milestone's named perk (unit PERK), and the code handed out by a coupon pool.
    perk: str | None = None
    coupon_code: str | None = None

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)

    def subject(self) -> str:
        return f"reward/{self.reward_id}"


class RewardReversed(Event):
    """A pending reward cancelled, or an issued one clawed back (new ledger entries)."""

    TOPIC: ClassVar[str] = "reward.reversed"
    TYPE: ClassVar[str] = "reward.reversed.v1"

    reward_id: UUID
    conversion_id: UUID
    program_id: UUID
    referrer_id: UUID
    side: Literal["referrer", "referee"]
    recipient: str
    amount: MinorUnits
    unit: UnitCode
    kind: Literal["cancelled", "clawed_back"]
    reversed_at: datetime

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)


class RewardFailed(Event):
    """Fulfilment gave up (webhook retries exhausted, coupon pool empty...)."""

    TOPIC: ClassVar[str] = "reward.failed"
    TYPE: ClassVar[str] = "reward.failed.v1"

    reward_id: UUID
    program_id: UUID
    referrer_id: UUID
    side: Literal["referrer", "referee"]
    recipient: str
    amount: MinorUnits
    unit: UnitCode
    reason: str
    failed_at: datetime

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)


class MilestoneReached(Event):
    """The referrer reached ``threshold`` converted referrals; granted once."""

    TOPIC: ClassVar[str] = "milestone.reached"
    TYPE: ClassVar[str] = "milestone.reached.v1"

    program_id: UUID
    referrer_id: UUID
    threshold: int = Field(ge=1)
    reward_id: UUID | None = None
    perk: str | None = None
    amount: MinorUnits | None = None
    unit: UnitCode | None = None
    reached_at: datetime

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)
