# ruff: noqa: RUF001 (the definitions are read by people: real multiplication and minus signs)
"""What the analytics APIs and pages show. Amounts are integers in minor units with a unit
code (``MB`` and ``PERK`` counts alike); rates are floats in [0, 1] or None when undefined."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.http.openapi import STORABLE_TEXT, JsonInt

FriendStatus = Literal["signed_up", "pending_review", "rejected", "converted", "reversed"]
Stage = Literal["enrolled", "shared", "clicked", "signed_up", "converted", "rewarded"]

K_DEFINITION = (
    "K = invites per participant × conversions per invite, where invites are unique "
    "attributable clicks on participants' links (each a distinct invited visitor); "
    "equal to converted referrals per participant."
)
EXPERIMENT_DEFINITION = (
    "Primary metric: share of a variant's participants who brought at least one converted "
    "friend (the participant is the unit of randomisation); Wilson 95% interval; pooled "
    "two-proportion z-test of the best variant against the first (control) one."
)
ROI_DEFINITION = (
    "Per currency: revenue = order amounts of referred conversions (recurring purchases "
    "included) minus what was refunded of them; reward cost = issued − clawed back, both "
    "sides and milestones; ROI = (revenue − reward cost) / reward cost. Amounts of different "
    "units are never added: a unit without referred revenue (MB, PERK, or a currency nobody "
    "paid in) has no ROI."
)
NPS_DEFINITION = "NPS = % promoters (9–10) − % detractors (0–6), from −100 to 100."


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ShareLink(_Out):
    channel: str
    url: str


class FriendRow(_Out):
    name: str = Field(description="The referee's id, masked (e.g. 'cu•••42')")
    status: FriendStatus
    at: datetime = Field(description="When the referral reached this status")


class RewardSums(_Out):
    unit: str
    pending: int = 0
    available: int = 0
    issued: int = 0
    reversed: int = 0
    failed: int = 0


class NextMilestone(_Out):
    threshold: int
    converted: int
    remaining: int
    perk: str | None = None
    amount: int | None = None
    unit: str | None = None


class LeaderboardRow(_Out):
    rank: int
    name: str = Field(description="Masked unless the participant opted in to the leaderboard")
    converted: int
    signups: int
    is_you: bool = False


class Scoreboard(_Out):
    participant_id: UUID
    program_id: UUID
    program_name: str
    display_name: str | None = None
    locale: str
    code: str
    link_url: str
    qr_svg_url: str
    qr_png_url: str
    shares: list[ShareLink]
    clicks: int
    unique_clicks: int
    signups: int
    pending_signups: int = Field(
        default=0,
        description="Friends who signed up with your code and wait for attribution to "
        "know it (decided within minutes, normally)",
    )
    conversions: int
    friends: list[FriendRow]
    rewards: list[RewardSums]
    next_milestone: NextMilestone | None = None
    leaderboard: list[LeaderboardRow]
    embed_origins: list[str] = []


class FunnelStage(_Out):
    stage: Stage
    count: int


class DailyPoint(_Out):
    day: date
    enrolled: int = 0
    shares: int = 0
    clicks: int = 0
    signups: int = 0
    conversions: int = 0
    rewards_issued: int = 0


class KFactor(_Out):
    value: float | None
    participants: int
    invites: int
    conversions: int
    invites_per_participant: float | None
    invite_conversion_rate: float | None
    definition: str = K_DEFINITION


class RoiLine(_Out):
    unit: str
    revenue: int = Field(description="Referred revenue net of refunds (0 when none)")
    reward_cost: int = Field(description="Issued minus clawed back")
    roi: float | None = Field(
        description="(revenue − reward cost) / reward cost; None without revenue in this unit "
        "or without cost"
    )


class ProgramAnalytics(_Out):
    program_id: UUID
    since: date
    until: date
    funnel: list[FunnelStage]
    rejections_by_reason: dict[str, int]
    flagged: int
    pending_signups: int = Field(
        default=0,
        description="Signups in the range still waiting for the click or code they name "
        "(not in the funnel until decided)",
    )
    daily: list[DailyPoint]
    reward_cost: dict[str, int] = Field(description="Per unit: issued minus reversed")
    cost_per_acquired_customer: dict[str, float] = Field(
        description="Per unit: reward cost divided by converted referrals"
    )
    k_factor: KFactor
    roi: list[RoiLine] = Field(
        default=[], description="Per unit: referred revenue against reward cost in the range"
    )
    roi_definition: str = ROI_DEFINITION


class NpsPoint(_Out):
    day: date
    responses: int
    nps: float | None


class NpsReport(_Out):
    program_id: UUID
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None
    daily: list[NpsPoint]
    definition: str = NPS_DEFINITION


class VariantStats(_Out):
    variant: str
    participants: int
    sharers: int
    clicks: int
    signups: int
    conversions: int
    participant_conversion_rate: float | None
    ci_low: float | None
    ci_high: float | None
    click_conversion_rate: float | None
    reward_cost_per_conversion: dict[str, float]
    k_factor: KFactor
    roi: list[RoiLine] = Field(default=[], description="Per unit, all time")


class ExperimentReport(_Out):
    program_id: UUID
    version: int | None
    variants: list[VariantStats]
    verdict: str
    p_value: float | None
    best: str | None
    definition: str = EXPERIMENT_DEFINITION


class ProgramSummary(_Out):
    program_id: UUID
    name: str
    status: str
    participants: int
    conversions: int
    funnel: list[FunnelStage]


class RewardIssue(_Out):
    reward_id: UUID
    program_id: UUID
    referrer_id: UUID
    amount: int
    unit: str
    reason: str
    since: datetime


class ConsoleOverview(_Out):
    programs: list[ProgramSummary]
    failed_rewards: list[RewardIssue]
    stuck_rewards: list[RewardIssue]
    dlq: dict[str, int]


class NpsAnswer(BaseModel):
    """``POST /v1/programs/{id}/nps``: one customer's 0-10 answer."""

    model_config = ConfigDict(extra="forbid")

    # Text Postgres can store (no NUL), said in the schema as the server checks it.
    customer_id: str = Field(min_length=1, max_length=200, pattern=STORABLE_TEXT)
    score: JsonInt = Field(ge=0, le=10)
    email: str | None = Field(
        default=None, max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"
    )
    name: str | None = Field(default=None, max_length=200, pattern=STORABLE_TEXT)
    locale: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    answered_at: datetime | None = Field(
        default=None, description="When the customer answered (with a time zone); now if omitted"
    )


class NpsRecorded(_Out):
    response_id: UUID
    program_id: UUID
    customer_id: str
    score: int
    category: Literal["promoter", "passive", "detractor"]
    answered_at: datetime
    invited_participant_id: UUID | None = Field(
        default=None, description="The participant a promoter was enrolled as, if invited"
    )
