"""Request and response models of the tracking API."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from babel.numbers import list_currencies
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.contracts.base import MinorUnits

# A purchase is at least one minor unit and at most 10^12 (ten billion dollars) of them.
PurchaseAmount = Annotated[int, Field(ge=1, le=10**12, strict=True)]


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def _iso_currency(code: str) -> str:
    """Purchases are in money: an ISO 4217 code, never a reward unit such as MB or PERK."""
    if code not in _currencies():
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


def _email(value: str) -> str:
    local, sep, domain = value.strip().rpartition("@")
    if not sep or not local or "." not in domain or " " in value.strip():
        raise ValueError("not an email address")
    return value.strip()


def _ip(value: str) -> str:
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValueError("not an IPv4 or IPv6 address") from None
    return value.strip()


Currency = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_iso_currency)]
Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
IpAddress = Annotated[str, Field(max_length=64), AfterValidator(_ip)]

OCCURRED_AT_DOC = (
    "When it happened, with a time zone (default: when it is received). At most a few minutes "
    "in the future (clock skew) and at most the service's maximum age in the past "
    "(OCCURRED_AT_MAX_AGE_DAYS, 90 by default). The program version in force then prices it."
)


class SignupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=200)
    click_id: UUID | None = None
    referral_code: str | None = Field(default=None, min_length=4, max_length=64)
    # Personal data: stored only as keyed hashes, used by the fraud rules.
    email: Email | None = None
    ip: IpAddress | None = None
    user_agent: str | None = Field(default=None, max_length=1000)
    device_id: str | None = Field(default=None, min_length=1, max_length=200)
    # The company says this person is already its customer: not referable (if the program
    # excludes existing customers).
    existing_customer: bool = False
    billing_customer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The customer's id in the company's billing system (Stripe's cus_...): "
        "Stripe events that name this customer and no customer id of the company's own are "
        "matched to this signup",
    )
    occurred_at: AwareDatetime | None = Field(
        default=None,
        description="When the signup happened (default: when received); windows and rules "
        "are those in force then. At most 5 minutes ahead of our clock and 30 days old "
        "(SIGNUP_MAX_AGE_S).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> SignupIn:
        if self.click_id is None and self.referral_code is None:
            raise ValueError("give click_id or referral_code")
        return self


class RuleOut(BaseModel):
    rule: str
    action: Literal["allow", "flag", "reject"]
    shadow: bool
    enforced: bool
    reason: str
    inputs: dict[str, Any] = Field(description="What the rule compared; hashes, never PII")


class DecisionOut(BaseModel):
    outcome: Literal["allow", "flag", "reject"]
    rules: list[RuleOut]
    decided_at: datetime


Status = Literal["pending", "unattributed", "active", "flagged", "rejected"]
STATUSES: tuple[str, ...] = get_args(Status)


class SignupOut(BaseModel):
    signup_id: UUID
    customer_id: str
    attributed: bool
    referrer_id: UUID | None
    reason: str = Field(description="Why the signup was or was not attributed")
    status: Status = Field(
        description="pending (the click or code it names has not reached attribution yet: "
        "poll the Location); unattributed; active (referral counts); flagged (held for "
        "review); rejected (by a fraud rule or a reviewer)"
    )
    rules: list[RuleOut] = Field(default=[], description="Fraud rules that fired")
    occurred_at: datetime = Field(description="When the signup happened")
    received_at: datetime = Field(description="When attribution received it")
    decided_at: datetime | None = Field(description="When it was decided (null while pending)")
    pending_until: datetime | None = Field(
        description="While pending: when it is given up if the click or code never arrives"
    )


class HeldOut(BaseModel):
    """A conversion or refund of a customer whose signup is pending: stored, applied once
    the signup is decided."""

    status: Literal["pending"] = "pending"
    kind: Literal["conversion", "refund"]
    signup_id: UUID
    customer_id: str
    order_id: str
    refund_id: str | None = None
    received_at: datetime


class ConversionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=200)
    order_id: str = Field(min_length=1, max_length=200)
    amount: PurchaseAmount
    currency: Currency
    occurred_at: AwareDatetime | None = Field(default=None, description=OCCURRED_AT_DOC)


class ConversionOut(BaseModel):
    conversion_id: UUID
    referral_id: UUID
    referrer_id: UUID
    order_id: str
    program_version: int | None
    qualified: bool
    reason: str = Field(description="Why the purchase qualified or not")
    sequence: int | None = Field(description="1 for the first qualifying purchase, 2... after")
    published: bool = Field(description="referral.converted was published (false: held/none)")
    occurred_at: datetime = Field(description="When the purchase happened")
    received_at: datetime = Field(description="When attribution received it")


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refund_id: str = Field(min_length=1, max_length=200, description="Your refund's unique id")
    order_id: str = Field(min_length=1, max_length=200)
    amount: PurchaseAmount | None = Field(
        default=None, description="Minor units refunded; omitted: all that is left"
    )
    currency: Currency | None = None
    occurred_at: AwareDatetime | None = Field(default=None, description=OCCURRED_AT_DOC)


class RefundOut(BaseModel):
    refund_id: str
    order_id: str
    conversion_id: UUID
    amount: MinorUnits
    currency: str
    refunded_total: MinorUnits
    full: bool = Field(description="The order is now fully refunded (a reversal)")
    published: bool
    occurred_at: datetime = Field(description="When the refund happened")
    received_at: datetime = Field(description="When attribution received it")


class ConversionSummary(BaseModel):
    conversion_id: UUID
    order_id: str
    amount: MinorUnits
    currency: str
    refunded_amount: MinorUnits
    qualified: bool
    reason: str
    sequence: int | None
    published: bool
    program_version: int | None = Field(description="The version in force at converted_at")
    converted_at: datetime = Field(description="When the purchase happened (its occurred_at)")
    received_at: datetime = Field(description="When attribution received it")


class ReferralOut(BaseModel):
    referral_id: UUID
    customer_id: str
    referrer_id: UUID | None = Field(description="The referrer it counts for (if attributed)")
    candidate_referrer_id: UUID | None = Field(description="Who it would be attributed to")
    click_id: UUID | None
    attributed: bool
    reason: str
    status: Status
    program_version: int | None
    signed_up_at: datetime
    reviewed_at: datetime | None
    review_note: str | None
    decision: DecisionOut | None
    conversions: list[ConversionSummary]


class ReferralPage(BaseModel):
    items: list[ReferralOut]
    next_cursor: str | None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=1000)


class FunnelOut(BaseModel):
    program_id: UUID
    participant_id: UUID | None
    start: datetime
    end: datetime
    clicks: int
    unique_clicks: int = Field(description="Distinct visitors (visitor_hash)")
    signups: int = Field(description="Signups with a referrer candidate (any status)")
    attributed_signups: int = Field(description="Signups now counting (status active)")
    flagged: int
    conversions: int = Field(description="Qualifying conversions")
    rejections: dict[str, int] = Field(description="Rejected referrals by rule (or 'review')")
    unattributed: dict[str, int] = Field(
        description="Program-wide only: signups not attributed, by reason"
    )
    pending: int = Field(
        default=0,
        description="Program-wide only: signups waiting for the click or code they name",
    )


class ClickOut(BaseModel):
    click_id: UUID
    code: str
    participant_id: UUID
    attributable: bool
