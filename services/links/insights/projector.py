"""Event handlers that keep the analytics read models (``rm_*`` tables) of the links service.

Every row is a pure function of the events: each handler upserts the facts its event carries
and merges them with what is there using order-free operations (the earliest time, the first
non-null value, a sorted union, a sum). Events of one referral arrive on different topics, so
``reward.issued`` may come before ``reward.created`` and ``referral.converted`` before
``referral.signed_up``; they end in the same rows either way, and the topics replayed into an
empty database rebuild the same tables. The inbox (in the consumer) makes every sum exact.

Clicks are counted, a batch at a time, by :class:`ClickCounter` (see its docstring)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date
from typing import Any
from uuid import UUID

import asyncpg

from services.links.insights import projection_repository as rm
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
from shared.contracts.referrals import RuleOutcome
from shared.messaging.batch import BatchConsumer
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope


async def _referral(conn: asyncpg.Connection, referral_id: UUID, **facts: Any) -> None:
    facts.setdefault("flag_rules", [])
    facts.setdefault("reject_rules", [])
    if facts.get("referee_customer_id") and await rm.referrer_erased(conn, facts["referrer_id"]):
        facts["referee_customer_id"] = None  # the erasure came first
    await rm.upsert_referral(conn, referral_id, facts)


async def _conversion(conn: asyncpg.Connection, conversion_id: UUID, **facts: Any) -> None:
    facts.setdefault("sequence", 1)
    facts.setdefault("refunded", 0)
    await rm.upsert_conversion(conn, conversion_id, facts)


async def _reward(conn: asyncpg.Connection, reward_id: UUID, **facts: Any) -> None:
    if (
        facts.get("side") == "referee"
        and facts.get("recipient")
        and await rm.referrer_erased(conn, facts["referrer_id"])
    ):
        facts["recipient"] = None  # a referee's id is not kept once the referrer is erased
    await rm.upsert_reward(conn, reward_id, facts)


def rule_names(rules: list[RuleOutcome], action: str) -> list[str]:
    """The rules that decided (shadow rules only observe), as a sorted list of names."""
    enforced = [r for r in rules if not r.shadow]
    deciding = [r.rule for r in enforced if r.action == action] or [r.rule for r in enforced]
    return sorted(set(deciding)) or ["unspecified"]


async def _decision(
    conn: asyncpg.Connection, referral_id: UUID, decision: str, rules: list[RuleOutcome]
) -> None:
    await rm.insert_rules(
        conn, referral_id, decision, [(r.rule, r.action, r.shadow, r.reason) for r in rules]
    )


async def on_enrolled(conn: asyncpg.Connection, ev: ParticipantEnrolled, _: Envelope) -> None:
    await rm.upsert_participant(
        conn, ev.participant_id, ev.program_id, ev.variant, ev.enrolled_at, None
    )


async def on_erased(conn: asyncpg.Connection, ev: ParticipantErased, _: Envelope) -> None:
    await rm.upsert_participant(conn, ev.participant_id, ev.program_id, None, None, ev.erased_at)
    await rm.forget_referees_of(conn, ev.participant_id)


async def on_shared(conn: asyncpg.Connection, ev: LinkShared, _: Envelope) -> None:
    await rm.insert_share(
        conn, ev.share_id, ev.program_id, ev.participant_id, ev.channel, ev.shared_at
    )


async def on_signed_up(conn: asyncpg.Connection, ev: ReferralSignedUp, _: Envelope) -> None:
    await _referral(
        conn,
        ev.referral_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        referee_customer_id=ev.referee_customer_id,
        variant=ev.variant,
        signed_up_at=ev.signed_up_at,
    )


async def on_pending(conn: asyncpg.Connection, ev: ReferralPending, _: Envelope) -> None:
    """A signup waiting for its click or code, or (``resolved_at`` set) what became of it."""
    await rm.upsert_pending(
        conn,
        ev.referral_id,
        ev.program_id,
        ev.waiting_for,
        ev.referral_code,
        ev.signed_up_at,
        ev.received_at,
        ev.resolved_at,
        ev.status if ev.resolved_at else None,
        ev.referrer_id,
    )


async def on_converted(conn: asyncpg.Connection, ev: ReferralConverted, _: Envelope) -> None:
    await _referral(
        conn,
        ev.referral_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        referee_customer_id=ev.referee_customer_id,
        variant=ev.variant,
    )
    await _conversion(
        conn,
        ev.conversion_id,
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


async def on_flagged(conn: asyncpg.Connection, ev: ReferralFlagged, _: Envelope) -> None:
    await _referral(
        conn,
        ev.referral_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        referee_customer_id=ev.referee_customer_id,
        flagged_at=ev.flagged_at,
        flag_rules=rule_names(ev.rules, "review"),
    )
    await _decision(conn, ev.referral_id, "flagged", ev.rules)


async def on_rejected(conn: asyncpg.Connection, ev: ReferralRejected, _: Envelope) -> None:
    await _referral(
        conn,
        ev.referral_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        referee_customer_id=ev.referee_customer_id,
        rejected_at=ev.rejected_at,
        reject_rules=rule_names(ev.rules, "reject"),
    )
    await _decision(conn, ev.referral_id, "rejected", ev.rules)


async def on_reversed(conn: asyncpg.Connection, ev: ReferralReversed, _: Envelope) -> None:
    await _conversion(
        conn,
        ev.conversion_id,
        referral_id=ev.referral_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        sequence=ev.sequence,
        refunded=ev.refunded_amount,
        reversed_at=ev.reversed_at if ev.full else None,
    )


async def on_reward_created(conn: asyncpg.Connection, ev: RewardCreated, _: Envelope) -> None:
    await _reward(
        conn,
        ev.reward_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        conversion_id=ev.conversion_id,
        referral_id=ev.referral_id,
        program_version=ev.program_version,
        side=ev.side,
        recipient=ev.recipient,
        unit=ev.unit,
        amount=ev.amount,
        initial_status=ev.status,
        created_at=ev.created_at,
        available_at=ev.available_at,
        variant=ev.variant,
        rule=ev.rule,
        perk=ev.perk,
    )


async def on_reward_issued(conn: asyncpg.Connection, ev: RewardIssued, _: Envelope) -> None:
    await _reward(
        conn,
        ev.reward_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        conversion_id=ev.conversion_id,
        referral_id=ev.referral_id,
        program_version=ev.program_version,
        side=ev.side,
        recipient=ev.recipient,
        unit=ev.unit,
        issued_amount=ev.amount,
        issued_at=ev.issued_at,
        variant=ev.variant,
        rule=ev.rule,
        perk=ev.perk,
    )


async def on_reward_reversed(conn: asyncpg.Connection, ev: RewardReversed, _: Envelope) -> None:
    await _reward(
        conn,
        ev.reward_id,
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


async def on_reward_failed(conn: asyncpg.Connection, ev: RewardFailed, _: Envelope) -> None:
    await _reward(
        conn,
        ev.reward_id,
        program_id=ev.program_id,
        referrer_id=ev.referrer_id,
        side=ev.side,
        recipient=ev.recipient,
        unit=ev.unit,
        failure_reason=ev.reason,
        failed_at=ev.failed_at,
    )


async def on_milestone(conn: asyncpg.Connection, ev: MilestoneReached, _: Envelope) -> None:
    await rm.upsert_milestone(
        conn,
        ev.program_id,
        ev.referrer_id,
        ev.threshold,
        ev.reached_at,
        ev.reward_id,
        ev.perk,
        ev.amount,
        ev.unit,
    )


async def on_clicked(conn: asyncpg.Connection, ev: LinkClicked, _: Envelope) -> None:
    """One click (the per-message path, used when a batch has to be split)."""
    await count_clicks(conn, [ev])


# The topics of the shared consumer (group ``links``); clicks have their own, below.
HANDLERS: dict[str, Handler] = {
    ParticipantEnrolled.TOPIC: on_enrolled,
    ParticipantErased.TOPIC: on_erased,
    LinkShared.TOPIC: on_shared,
    ReferralSignedUp.TOPIC: on_signed_up,
    ReferralPending.TOPIC: on_pending,
    ReferralConverted.TOPIC: on_converted,
    ReferralFlagged.TOPIC: on_flagged,
    ReferralRejected.TOPIC: on_rejected,
    ReferralReversed.TOPIC: on_reversed,
    RewardCreated.TOPIC: on_reward_created,
    RewardIssued.TOPIC: on_reward_issued,
    RewardReversed.TOPIC: on_reward_reversed,
    RewardFailed.TOPIC: on_reward_failed,
    MilestoneReached.TOPIC: on_milestone,
}


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
