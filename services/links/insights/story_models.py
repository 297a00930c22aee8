"""What the support story of one participant answers (``GET .../participants/{pid}/story``):
the parts links holds in its read models, and the parts fetched from rewards and
notifications, with the state of each fetched part so that a partial answer says what is
missing. Amounts are integers in minor units with a unit code."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class StoryParticipant(_Out):
    participant_id: UUID
    program_id: UUID
    external_user_id: str = Field(description="The company's user id (a keyed hash once erased)")
    code: str
    name: str | None = None
    locale: str
    variant: str | None = None
    enrolled_at: datetime
    erased_at: datetime | None = None
    leaderboard_opt_in: bool
    referred_by: UUID | None = Field(
        default=None, description="The referrer whose referral brought this participant, if any"
    )


class ClickDay(_Out):
    day: date
    clicks: int = Field(description="Every redirect, bots and prefetches included")
    attributable: int = Field(description="By a person")
    invites: int = Field(description="Attributable and the visitor's first in the hour")


class StoryClicks(_Out):
    clicks: int
    attributable: int
    invites: int
    daily: list[ClickDay] = Field(description="Per UTC day, newest first (at most 366)")


class StoryShare(_Out):
    share_id: UUID
    channel: str
    shared_at: datetime


class DecisionRule(_Out):
    decision: str = Field(description="flagged or rejected")
    rule: str
    action: str
    shadow: bool = Field(description="Only observed, not enforced")
    reason: str


class StoryConversion(_Out):
    conversion_id: UUID
    sequence: int
    amount: int | None
    currency: str | None
    converted_at: datetime | None = Field(description="None while only a refund has arrived")
    program_version: int | None
    refunded: int
    reversed_at: datetime | None = Field(description="When it was fully refunded")


class StorySignup(_Out):
    referral_id: UUID
    referee_customer_id: str | None = Field(description="None once the referrer is erased")
    status: str = Field(description="As attribution's events report it")
    status_at: datetime | None
    signed_up_at: datetime | None
    flagged_at: datetime | None
    rejected_at: datetime | None
    rules: list[DecisionRule]
    conversions: list[StoryConversion]


class StoryReward(_Out):
    reward_id: UUID
    referral_id: UUID | None
    conversion_id: UUID | None
    side: str
    recipient: str | None
    rule: str | None
    perk: str | None
    amount: int
    unit: str
    state: str
    program_version: int | None
    created_at: datetime | None
    available_at: datetime | None
    issued_at: datetime | None
    reversed_at: datetime | None
    reversal_kind: str | None
    reversed_amount: int | None
    failed_at: datetime | None
    failure_reason: str | None


class StoryMilestone(_Out):
    threshold: int
    reached_at: datetime
    perk: str | None
    amount: int | None
    unit: str | None


class LedgerReward(_Out):
    reward_id: UUID
    side: str
    rule: str
    amount: int
    unit: str
    status: str
    fulfilment: str
    issued_at: datetime | None = None
    failure_reason: str | None = None


class Posting(_Out):
    """One line of the participant's ledger statement (rewards' ``GET .../statement``)."""

    at: datetime
    kind: str = Field(
        description="grant, release, cancel, clawback, refund_adjustment, payout, failed, "
        "redemption or adjustment (manual)"
    )
    account: str
    role: str = Field(
        description="What the account is to the participant: balances, pending, "
        "referee_balances or referee_pending"
    )
    unit: str
    amount: int = Field(description="What the posting adds to the account (a credit is positive)")
    balance: int = Field(description="The account's balance in this unit after the posting")
    reward_id: UUID | None = None
    actor: str | None = Field(default=None, description="Who made a manual adjustment")
    reason: str | None = Field(default=None, description="Why, for a manual adjustment")


class StoryLedger(_Out):
    """From rewards: what the participant holds now, and the rewards as the ledger has them."""

    balances: dict[str, int]
    pending: dict[str, int]
    rewards: list[LedgerReward]
    postings: list[Posting] | None = Field(
        default=None,
        description="The statement's postings, oldest first, each with its account's running "
        "balance; None when rewards did not answer for them (see parts)",
    )
    postings_truncated: bool = Field(
        default=False, description="More postings than shown (rewards' statement has them all)"
    )


class StoryMessage(_Out):
    message_id: UUID
    channel: str
    trigger: str
    category: str
    status: str
    reason: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None


PartName = Literal["ledger", "postings", "messages"]
# not_offered: the other service's version does not serve that part yet.
PartStateName = Literal["ok", "unavailable", "not_offered"]


class PartState(_Out):
    part: PartName
    source: Literal["rewards", "notifications"]
    state: PartStateName
    detail: str | None = None


class ParticipantStory(_Out):
    participant: StoryParticipant
    clicks: StoryClicks
    shares: list[StoryShare]
    signups: list[StorySignup] = Field(description="Referrals made, newest first")
    signups_truncated: bool = False
    rewards: list[StoryReward] = Field(
        description="Both sides of the participant's referrals, and those they got as a referee"
    )
    milestones: list[StoryMilestone]
    ledger: StoryLedger | None = Field(description="None when rewards did not answer")
    messages: list[StoryMessage] | None = Field(
        description="Newest first; None when notifications did not answer"
    )
    messages_truncated: bool = False
    parts: list[PartState] = Field(description="Where the fetched parts came from, and how")
    complete: bool = Field(description="False when a part is missing (see parts)")
