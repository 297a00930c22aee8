"""Referral facts published by attribution. Keyed by the referrer (participant) id so that
everything about one referrer is processed in order by one consumer."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

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
    # The referrer's experiment variant, if the program runs one.
    variant: str | None = None
    # The company's own user id of the referrer (absent from producers older than it), so that
    # a CRM finds its contact without keeping the participant id.
    referrer_external_user_id: str | None = None

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)

    def subject(self) -> str:
        return f"referral/{self.referral_id}"


class ReferralPending(Event):
    """A signup that names a click or a referral code attribution has not heard of yet: it
    waits (``resolved_at`` null) and is decided when the click or the enrolment arrives, or
    given up at ``expires_at``. The same topic carries its resolution (``resolved_at`` set,
    ``status`` the decision); an attributed resolution is also ``referral.signed_up``,
    ``referral.flagged`` or ``referral.rejected`` as usual. Keyed by the referral id: the
    referrer is what is not known yet."""

    TOPIC: ClassVar[str] = "referral.pending"
    TYPE: ClassVar[str] = "referral.pending.v1"

    referral_id: UUID
    program_id: UUID
    referee_customer_id: str
    waiting_for: Literal["click", "code"]
    click_id: UUID | None = None
    referral_code: str | None = None
    signed_up_at: datetime
    received_at: datetime
    expires_at: datetime
    # Set on the resolution only.
    resolved_at: datetime | None = None
    status: Literal["pending", "unattributed", "active", "flagged", "rejected"] = "pending"
    reason: str | None = None
    referrer_id: UUID | None = None

    def key(self) -> str:
        """The referral id: a pending signup and its resolution stay in order."""
        return str(self.referral_id)

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
    # When the purchase happened (the caller's ``occurred_at``), which prices it.
    converted_at: datetime
    # The program version in force at ``converted_at``, as attribution knew it.
    program_version: int | None = None
    # When attribution received the purchase (absent from producers older than it).
    received_at: datetime | None = None
    # The referrer's experiment variant, if the program runs one.
    variant: str | None = None
    # 1 for the first qualifying purchase; 2, 3... for recurring ones.
    sequence: int = Field(default=1, ge=1)
    # The company's own user id of the referrer (absent from producers older than it).
    referrer_external_user_id: str | None = None

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)

    def subject(self) -> str:
        return f"referral/{self.referral_id}"


class RuleOutcome(BaseModel):
    """One fraud rule that fired, what it decided, and whether it was enforced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    action: str
    shadow: bool = False
    reason: str = ""


class ReferralFlagged(Event):
    """Held for review; it proceeds only if approved."""

    TOPIC: ClassVar[str] = "referral.flagged"
    TYPE: ClassVar[str] = "referral.flagged.v1"

    referral_id: UUID
    program_id: UUID
    referrer_id: UUID
    referee_customer_id: str
    rules: list[RuleOutcome]
    flagged_at: datetime

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)


class ReferralRejected(Event):
    TOPIC: ClassVar[str] = "referral.rejected"
    TYPE: ClassVar[str] = "referral.rejected.v1"

    referral_id: UUID
    program_id: UUID
    referrer_id: UUID
    referee_customer_id: str
    rules: list[RuleOutcome]
    rejected_at: datetime

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)


class ReferralReversed(Event):
    """A refund: ``full`` reverses the conversion, otherwise it is an adjustment."""

    TOPIC: ClassVar[str] = "referral.reversed"
    TYPE: ClassVar[str] = "referral.reversed.v1"

    refund_id: UUID
    conversion_id: UUID
    referral_id: UUID
    program_id: UUID
    referrer_id: UUID
    order_id: str
    refunded_amount: MinorUnits
    currency: UnitCode
    full: bool
    # When the refund happened (the caller's ``occurred_at``).
    reversed_at: datetime
    referee_customer_id: str | None = None
    # The sequence of the conversion being reversed (1 for the first qualifying purchase).
    sequence: int = Field(default=1, ge=1)
    # When attribution received the refund (absent from producers older than it).
    received_at: datetime | None = None

    def key(self) -> str:
        """The referrer (participant) id: one referrer's events stay in order."""
        return str(self.referrer_id)
