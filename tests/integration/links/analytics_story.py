"""One program's referral story as events, with hand-counted figures, for the analytics tests.

Two participants enrolled on day D: A (variant "a") and B (variant "b").
- A shares twice on D; A's link gets 4 redirects on D (3 by people, 2 of them first visits,
  and a bot); B's link 1 first visit on D+1.
- R1 (A -> customer-0001): signed up D 11:00, converted D 12:00 (order 5000 USD). W1, A's
  2000 USD, created issued; W2, the referee's 1000 USD, created pending until D+10.
  A reaches milestone 1 (perk "sticker").
- R2 (A -> customer-0002): signed up and flagged (velocity) D 11:30, rejected D 13:00.
- R3 (B -> customer-0003): signed up D+1 11:00, converted D+1 12:00 (4000 USD), W3 B's 2000
  USD created issued; fully refunded D+1 15:00, W3 clawed back. W4, the referee's 1000 USD,
  created available, failed D+1 13:00 (webhook).

Hand counts for D..D+1: enrolled 2, shared 1 (A), clicked 3 (invites: 2 + 1), signed up 3,
converted 1 (R1; R3 was refunded), rewarded 2 (R1 and R3 had an issued reward), rejections
{velocity: 1}, flagged 1. Reward cost USD = W1 2000 + W3 2000 - W3 clawed back 2000 = 2000;
per acquired customer 2000 / 1 = 2000.0. K: 2 participants, 3 invites, 1 conversion:
invites per participant 1.5, conversions per invite 1/3, K = 1.5 * 1/3 = 0.5.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from shared.contracts import (
    LinkClicked,
    LinkShared,
    MilestoneReached,
    ParticipantEnrolled,
    ReferralConverted,
    ReferralFlagged,
    ReferralRejected,
    ReferralReversed,
    ReferralSignedUp,
    RewardCreated,
    RewardFailed,
    RewardIssued,
    RewardReversed,
)
from shared.contracts.base import Event
from shared.contracts.referrals import RuleOutcome


@dataclass
class Story:
    program_id: UUID
    a: UUID
    b: UUID
    day: date
    code_a: str = "ACODE0001"
    code_b: str = "BCODE0002"
    ids: dict[str, UUID] = field(default_factory=dict)

    def at(self, days: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
        return datetime.combine(self.day + timedelta(days=days), time(hour, minute, second), UTC)

    def id(self, name: str) -> UUID:
        return self.ids.setdefault(name, uuid.uuid4())


def new_story(
    program_id: UUID | None = None,
    a: UUID | None = None,
    b: UUID | None = None,
    day: date = date(2026, 11, 2),
) -> Story:
    return Story(program_id or uuid.uuid4(), a or uuid.uuid4(), b or uuid.uuid4(), day)


def enrolments(s: Story) -> list[Event]:
    return [
        ParticipantEnrolled(
            participant_id=pid, program_id=s.program_id, external_user_id=f"user-{name}",
            code=code, link_url=f"https://ref.example.com/r/{code}", variant=name,
            enrolled_at=s.at(0, 9),
        )
        for pid, name, code in ((s.a, "a", s.code_a), (s.b, "b", s.code_b))
    ]  # fmt: skip


def shares_and_clicks(s: Story) -> list[Event]:
    def click(pid: UUID, code: str, at: datetime, **kw: object) -> LinkClicked:
        return LinkClicked(
            click_id=uuid.uuid4(), code=code, program_id=s.program_id, participant_id=pid,
            clicked_at=at, **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    return [
        LinkShared(share_id=s.id("share1"), program_id=s.program_id, participant_id=s.a,
                   code=s.code_a, channel="email", shared_at=s.at(0, 9, 10)),
        LinkShared(share_id=s.id("share2"), program_id=s.program_id, participant_id=s.a,
                   code=s.code_a, channel="whatsapp", shared_at=s.at(0, 9, 20)),
        click(s.a, s.code_a, s.at(0, 10), visitor_hash="v1"),
        click(s.a, s.code_a, s.at(0, 10, 1), visitor_hash="v1", unique=False),
        click(s.a, s.code_a, s.at(0, 10, 2), visitor_hash="v2"),
        click(s.a, s.code_a, s.at(0, 10, 3), attributable=False, non_attributable_reason="bot"),
        click(s.b, s.code_b, s.at(1, 10), visitor_hash="v3"),
    ]  # fmt: skip


def referrals(s: Story) -> list[Event]:
    p = s.program_id
    velocity = [RuleOutcome(rule="velocity", action="review")]
    return [
        ReferralSignedUp(referral_id=s.id("r1"), program_id=p, referrer_id=s.a,
                         referee_customer_id="customer-0001", signed_up_at=s.at(0, 11),
                         variant="a"),
        ReferralConverted(conversion_id=s.id("c1"), referral_id=s.id("r1"), program_id=p,
                          referrer_id=s.a, referee_customer_id="customer-0001", order_id="o1",
                          amount=5000, currency="USD", converted_at=s.at(0, 12),
                          program_version=1, variant="a"),
        ReferralSignedUp(referral_id=s.id("r2"), program_id=p, referrer_id=s.a,
                         referee_customer_id="customer-0002", signed_up_at=s.at(0, 11, 30),
                         variant="a"),
        ReferralFlagged(referral_id=s.id("r2"), program_id=p, referrer_id=s.a,
                        referee_customer_id="customer-0002", rules=velocity,
                        flagged_at=s.at(0, 11, 30)),
        ReferralRejected(referral_id=s.id("r2"), program_id=p, referrer_id=s.a,
                         referee_customer_id="customer-0002",
                         rules=[RuleOutcome(rule="velocity", action="reject"),
                                RuleOutcome(rule="same_ip", action="reject", shadow=True)],
                         rejected_at=s.at(0, 13)),
        ReferralSignedUp(referral_id=s.id("r3"), program_id=p, referrer_id=s.b,
                         referee_customer_id="customer-0003", signed_up_at=s.at(1, 11),
                         variant="b"),
        ReferralConverted(conversion_id=s.id("c3"), referral_id=s.id("r3"), program_id=p,
                          referrer_id=s.b, referee_customer_id="customer-0003", order_id="o3",
                          amount=4000, currency="USD", converted_at=s.at(1, 12),
                          program_version=1, variant="b"),
        ReferralReversed(refund_id=uuid.uuid4(), conversion_id=s.id("c3"),
                         referral_id=s.id("r3"), program_id=p, referrer_id=s.b, order_id="o3",
                         refunded_amount=4000, currency="USD", full=True,
                         reversed_at=s.at(1, 15), referee_customer_id="customer-0003"),
    ]  # fmt: skip


def rewards(s: Story) -> list[Event]:
    p = s.program_id

    def created(
        name: str,
        conv: str,
        ref: str,
        referrer: UUID,
        side: str,
        recipient: str,
        status: str,
        at: datetime,
        **kw: object,
    ) -> RewardCreated:
        return RewardCreated(
            reward_id=s.id(name), conversion_id=s.id(conv), referral_id=s.id(ref),
            program_id=p, program_version=1, referrer_id=referrer, side=side,  # type: ignore[arg-type]
            recipient=recipient, amount=kw.pop("amount", 2000), unit="USD",  # type: ignore[arg-type]
            status=status, created_at=at, rule="base", **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    return [
        created("w1", "c1", "r1", s.a, "referrer", str(s.a), "issued", s.at(0, 12, 0, 1)),
        RewardIssued(reward_id=s.id("w1"), conversion_id=s.id("c1"), referral_id=s.id("r1"),
                     program_id=p, program_version=1, referrer_id=s.a, side="referrer",
                     recipient=str(s.a), amount=2000, unit="USD", issued_at=s.at(0, 12, 0, 1),
                     rule="base"),
        created("w2", "c1", "r1", s.a, "referee", "customer-0001", "pending", s.at(0, 12, 0, 1),
                amount=1000, available_at=s.at(10, 12)),
        MilestoneReached(program_id=p, referrer_id=s.a, threshold=1, perk="sticker",
                         reached_at=s.at(0, 12, 0, 2)),
        created("w3", "c3", "r3", s.b, "referrer", str(s.b), "issued", s.at(1, 12, 0, 1)),
        RewardIssued(reward_id=s.id("w3"), conversion_id=s.id("c3"), referral_id=s.id("r3"),
                     program_id=p, program_version=1, referrer_id=s.b, side="referrer",
                     recipient=str(s.b), amount=2000, unit="USD", issued_at=s.at(1, 12, 0, 1),
                     rule="base"),
        created("w4", "c3", "r3", s.b, "referee", "customer-0003", "available",
                s.at(1, 12, 0, 1), amount=1000, available_at=s.at(1, 12, 0, 1)),
        RewardFailed(reward_id=s.id("w4"), program_id=p, referrer_id=s.b, side="referee",
                     recipient="customer-0003", amount=1000, unit="USD", reason="webhook",
                     failed_at=s.at(1, 13)),
        RewardReversed(reward_id=s.id("w3"), conversion_id=s.id("c3"), program_id=p,
                       referrer_id=s.b, side="referrer", recipient=str(s.b), amount=2000,
                       unit="USD", kind="clawed_back", reversed_at=s.at(1, 15)),
    ]  # fmt: skip


def all_events(s: Story) -> list[Event]:
    return [*enrolments(s), *shares_and_clicks(s), *referrals(s), *rewards(s)]


READ_MODEL_TABLES = {
    "rm_participants": "participant_id",
    "rm_shares": "share_id",
    "rm_clicks_daily": "participant_id, day",
    "rm_referrals": "referral_id",
    "rm_conversions": "conversion_id",
    "rm_rewards": "reward_id",
    "rm_milestones": "program_id, referrer_id, threshold",
    "rm_referral_rules": "referral_id, decision, rule",
}


async def snapshot(conn: object) -> dict[str, list[dict[str, object]]]:
    """Every read-model table, row by row in key order (inbox bookkeeping excluded)."""
    out: dict[str, list[dict[str, object]]] = {}
    for table, key in READ_MODEL_TABLES.items():
        rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")  # type: ignore[attr-defined]
        out[table] = [dict(r) for r in rows]
    return out
