"""Event handlers that keep the analytics read models (``rm_*`` tables) of the links service.

Every row is a pure function of the events: each handler adds the facts its event carries to
a :class:`~services.links.insights.projection.Projection`, written a whole poll at a time by
:class:`ReadModelProjector` and merged with what is there using order-free operations (the
earliest time, the first non-null value, a sorted union, a sum). Events of one referral
arrive on different topics, so ``reward.issued`` may come before ``reward.created`` and
``referral.converted`` before ``referral.signed_up``; they end in the same rows either way,
and the topics replayed into an empty database rebuild the same tables. The inbox (in the
consumer) makes every sum exact.

Clicks are counted, a batch at a time, by :class:`ClickCounter` (see its docstring)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date
from typing import Any
from uuid import UUID

import asyncpg

from services.links.insights import projection_repository as rm
from services.links.insights.projection import Projection
from shared.contracts import (
    LinkClicked,
    LinkShared,
    MilestoneReached,
    ParticipantEnrolled,
    ParticipantErased,
    ReferralConverted,
    ReferralFlagged,
    ReferralPending,
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
from shared.messaging.batch import BatchConsumer
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope


def _referral(p: Projection, **facts: Any) -> None:
    facts.setdefault("flag_rules", [])
    facts.setdefault("reject_rules", [])
    p.upsert("rm_referrals", **facts)


def _conversion(p: Projection, **facts: Any) -> None:
    facts.setdefault("sequence", 1)
    facts.setdefault("refunded", 0)
    p.upsert("rm_conversions", **facts)


def rule_names(rules: list[RuleOutcome], action: str) -> list[str]:
    """The rules that decided (shadow rules only observe), as a sorted list of names."""
    enforced = [r for r in rules if not r.shadow]
    deciding = [r.rule for r in enforced if r.action == action] or [r.rule for r in enforced]
    return sorted(set(deciding)) or ["unspecified"]


def _decision(p: Projection, referral_id: UUID, decision: str, rules: list[RuleOutcome]) -> None:
    p.rules += [
        {"referral_id": referral_id, "decision": decision, "rule": r.rule, "action": r.action,
         "shadow": r.shadow, "reason": r.reason}
        for r in rules
    ]  # fmt: skip


def enrolled(p: Projection, ev: ParticipantEnrolled) -> None:
    p.upsert(
        "rm_participants",
        participant_id=ev.participant_id,
        program_id=ev.program_id,
        variant=ev.variant,
        enrolled_at=ev.enrolled_at,
    )


def erased(p: Projection, ev: ParticipantErased) -> None:
    p.upsert(
        "rm_participants",
        participant_id=ev.participant_id,
        program_id=ev.program_id,
        erased_at=ev.erased_at,
    )
    p.erased.append(ev.participant_id)


def shared(p: Projection, ev: LinkShared) -> None:
    p.shares.append(
        {"share_id": ev.share_id, "program_id": ev.program_id,
         "participant_id": ev.participant_id, "channel": ev.channel, "shared_at": ev.shared_at}
    )  # fmt: skip


def signed_up(p: Projection, ev: ReferralSignedUp) -> None:
    _referral(
        p,
        referral_id=ev.referral_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        referee_customer_id=ev.referee_customer_id,
        variant=ev.variant,
        signed_up_at=ev.signed_up_at,
    )


def pending(p: Projection, ev: ReferralPending) -> None:
    """A signup waiting for its click or code, or (``resolved_at`` set) what became of it."""
    p.upsert(
        "rm_pending_referrals",
        referral_id=ev.referral_id,
        program_id=ev.program_id,
        waiting_for=ev.waiting_for,
        referral_code=ev.referral_code,
        signed_up_at=ev.signed_up_at,
        received_at=ev.received_at,
        resolved_at=ev.resolved_at,
        resolution=ev.status if ev.resolved_at else None,
        referrer_id=ev.referrer_id,
    )


def converted(p: Projection, ev: ReferralConverted) -> None:
    _referral(
        p,
        referral_id=ev.referral_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        referee_customer_id=ev.referee_customer_id,
        variant=ev.variant,
    )
    _conversion(
        p,
        conversion_id=ev.conversion_id,
        referral_id=ev.referral_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        order_amount=ev.amount,
        currency=ev.currency,
        converted_at=ev.converted_at,
        program_version=ev.program_version,
        variant=ev.variant,
        sequence=ev.sequence,
    )


def flagged(p: Projection, ev: ReferralFlagged) -> None:
    _referral(
        p,
        referral_id=ev.referral_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        referee_customer_id=ev.referee_customer_id,
        flagged_at=ev.flagged_at,
        flag_rules=rule_names(ev.rules, "review"),
    )
    _decision(p, ev.referral_id, "flagged", ev.rules)


def rejected(p: Projection, ev: ReferralRejected) -> None:
    _referral(
        p,
        referral_id=ev.referral_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        referee_customer_id=ev.referee_customer_id,
        rejected_at=ev.rejected_at,
        reject_rules=rule_names(ev.rules, "reject"),
    )
    _decision(p, ev.referral_id, "rejected", ev.rules)


def reversed_(p: Projection, ev: ReferralReversed) -> None:
    _conversion(
        p,
        conversion_id=ev.conversion_id,
        referral_id=ev.referral_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        sequence=ev.sequence,
        refunded=ev.refunded_amount,
        reversed_at=ev.reversed_at if ev.full else None,
    )


def _reward_facts(ev: RewardCreated | RewardIssued) -> dict[str, Any]:
    """What reward.created and reward.issued both say of a reward."""
    return {
        "reward_id": ev.reward_id,
        "program_id": ev.program_id,
        "referrer_id": ev.referrer_id,
        "conversion_id": ev.conversion_id,
        "referral_id": ev.referral_id,
        "program_version": ev.program_version,
        "side": ev.side,
        "recipient": ev.recipient,
        "unit": ev.unit,
        "variant": ev.variant,
        "rule": ev.rule,
        "perk": ev.perk,
    }


def reward_created(p: Projection, ev: RewardCreated) -> None:
    p.upsert(
        "rm_rewards",
        **_reward_facts(ev),
        amount=ev.amount,
        initial_status=ev.status,
        created_at=ev.created_at,
        available_at=ev.available_at,
    )


def reward_issued(p: Projection, ev: RewardIssued) -> None:
    p.upsert("rm_rewards", **_reward_facts(ev), issued_amount=ev.amount, issued_at=ev.issued_at)


def reward_reversed(p: Projection, ev: RewardReversed) -> None:
    p.upsert(
        "rm_rewards",
        reward_id=ev.reward_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        conversion_id=ev.conversion_id,
        side=ev.side,
        recipient=ev.recipient,
        unit=ev.unit,
        reversed_amount=ev.amount,
        reversal_kind=ev.kind,
        reversed_at=ev.reversed_at,
    )


def reward_failed(p: Projection, ev: RewardFailed) -> None:
    p.upsert(
        "rm_rewards",
        reward_id=ev.reward_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        side=ev.side,
        recipient=ev.recipient,
        unit=ev.unit,
        failure_reason=ev.reason,
        failed_at=ev.failed_at,
    )


def milestone(p: Projection, ev: MilestoneReached) -> None:
    p.upsert(
        "rm_milestones",
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        threshold=ev.threshold,
        reached_at=ev.reached_at,
        reward_id=ev.reward_id,
        perk=ev.perk,
        amount=ev.amount,
        unit=ev.unit,
    )


# What each topic of the shared group (``links``) does to the read models; clicks have their
# own group, below.
PROJECT: dict[str, Callable[[Projection, Any], None]] = {
    ParticipantEnrolled.TOPIC: enrolled,
    ParticipantErased.TOPIC: erased,
    LinkShared.TOPIC: shared,
    ReferralSignedUp.TOPIC: signed_up,
    ReferralPending.TOPIC: pending,
    ReferralConverted.TOPIC: converted,
    ReferralFlagged.TOPIC: flagged,
    ReferralRejected.TOPIC: rejected,
    ReferralReversed.TOPIC: reversed_,
    RewardCreated.TOPIC: reward_created,
    RewardIssued.TOPIC: reward_issued,
    RewardReversed.TOPIC: reward_reversed,
    RewardFailed.TOPIC: reward_failed,
    MilestoneReached.TOPIC: milestone,
}


async def project(conn: asyncpg.Connection, events: list[Event]) -> None:
    """Apply ``events`` (each seen for the first time) to the read models."""
    projection = Projection()
    for event in events:
        PROJECT[event.TOPIC](projection, event)
    await rm.write(conn, projection)


async def _project_one(conn: asyncpg.Connection, event: Event, _: Envelope) -> None:
    await project(conn, [event])


# Per-message handlers: the path of a batch that had to be split (a message failed).
HANDLERS: dict[str, Handler] = dict.fromkeys(PROJECT, _project_one)


class ReadModelProjector(BatchConsumer):
    """Keeps the read models from a whole poll at a time: one inbox statement and one
    statement per table and round (``projection.rounds``) for however many events."""

    async def apply_batch(
        self, conn: asyncpg.Connection, events: list[tuple[Envelope, Any]]
    ) -> None:
        await project(conn, [ev for _, ev in events])


async def on_clicked(conn: asyncpg.Connection, ev: LinkClicked, _: Envelope) -> None:
    """One click (the per-message path, used when a batch has to be split)."""
    await count_clicks(conn, [ev])


def click_counts(
    clicks: list[LinkClicked],
) -> dict[tuple[UUID, date], tuple[UUID, int, int, int]]:
    """(participant, UTC day) -> (program, clicks, attributable, invites) of a batch."""
    totals: dict[tuple[UUID, date], list[Any]] = defaultdict(lambda: [None, 0, 0, 0])
    for ev in clicks:
        row = totals[(ev.participant_id, ev.clicked_at.astimezone(UTC).date())]
        row[0] = ev.program_id
        row[1] += 1
        row[2] += ev.attributable
        row[3] += ev.attributable and ev.unique
    return {k: (v[0], v[1], v[2], v[3]) for k, v in totals.items()}


async def count_clicks(conn: asyncpg.Connection, clicks: list[LinkClicked]) -> None:
    # Sorted, so that two instances during a rebalance lock rows in the same order.
    counts = sorted(click_counts(clicks).items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))
    await rm.add_daily_clicks(conn, [(p, d, *rest) for (p, d), rest in counts])


class ClickCounter(BatchConsumer):
    """Counts ``link.clicked`` into ``rm_clicks_daily``: one inbox statement for the batch and
    one upsert of one row per (participant, day) seen, so a batch of 500 clicks on 20 links
    costs two statements (see ``shared.messaging.batch`` for the guarantees it keeps)."""

    async def apply_batch(
        self, conn: asyncpg.Connection, events: list[tuple[Envelope, Any]]
    ) -> None:
        await count_clicks(conn, [ev for _, ev in events])
