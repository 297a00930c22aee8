"""Referral facts published by attribution. Keyed by the referrer (participant) id so that
everything about one referrer is processed in order by one consumer."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from shared.contracts.base import Event, MinorUnits, UnitCode


class ReferralSignedUp(Event):
    TOPIC: ClassVar[str] = "referral.signed_up"
    TYPE: ClassVar[str] = "referral.signed_up.v1"

    referral_id: UUID
    program_id: UUID
    referrer_id: UUID
    referee_customer_id: str
    click_id: UUID | None = None
    signed_up_at: datetime

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)

    def subject(self) -> str:
        return f"referral/{self.referral_id}"


class ReferralConverted(Event):
    TOPIC: ClassVar[str] = "referral.converted"
    TYPE: ClassVar[str] = "referral.converted.v1"

    conversion_id: UUID
    referral_id: UUID
    program_id: UUID
    referrer_id: UUID
    referee_customer_id: str
    order_id: str
    amount: MinorUnits
    currency: UnitCode
    converted_at: datetime
    # The program version in force at ``converted_at``, as attribution knew it.
    program_version: int | None = None

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)

    def subject(self) -> str:
        return f"referral/{self.referral_id}"
