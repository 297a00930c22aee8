"""Reward facts published by the rewards service. Keyed by the referrer id."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from shared.contracts.base import Event, MinorUnits, UnitCode


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

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)

    def subject(self) -> str:
        return f"reward/{self.reward_id}"
