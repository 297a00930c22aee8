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

from shared.contracts import (
    LinkClicked,
    LinkShared,
    MilestoneReached,
    ParticipantEnrolled,
    ParticipantErased,
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
from shared.contracts.referrals import RuleOutcome
from shared.messaging.batch import BatchConsumer
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope

# How each column merges an existing value with a newly seen one.
_MERGE = {
    "first": "coalesce({t}.{c}, EXCLUDED.{c})",
    "earliest": "least({t}.{c}, EXCLUDED.{c})",
    "greatest": "greatest({t}.{c}, EXCLUDED.{c})",
    "union": "ARRAY(SELECT DISTINCT x FROM unnest({t}.{c} || EXCLUDED.{c}) AS x ORDER BY x)",
    "sum": "{t}.{c} + EXCLUDED.{c}",
}


def _upsert(table: str, key: tuple[str, ...], columns: dict[str, str]) -> str:
    """INSERT of ``key`` + ``columns`` (in that order, as $1..$n) that merges on conflict."""
    names = [*key, *columns]
    params = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    merges = ", ".join(
        f"{col} = " + _MERGE[how].format(t=table, c=col) for col, how in columns.items()
    )
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({params}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {merges}"
    )


_PARTICIPANT = _upsert(
    "rm_participants",
    ("participant_id",),
    {"program_id": "first", "variant": "first", "enrolled_at": "earliest", "erased_at": "earliest"},
)
_SHARE = (
    "INSERT INTO rm_shares (share_id, program_id, participant_id, channel, shared_at) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
)
_REFERRAL = _upsert(
    "rm_referrals",
    ("referral_id",),
    {
        "program_id": "first",
        "referrer_id": "first",
        "referee_customer_id": "first",
        "variant": "first",
        "signed_up_at": "earliest",
        "flagged_at": "earliest",
        "flag_rules": "union",
        "rejected_at": "earliest",
        "reject_rules": "union",
    },
)
_CONVERSION = _upsert(
    "rm_conversions",
    ("conversion_id",),
    {
        "referral_id": "first",
        "program_id": "first",
        "referrer_id": "first",
        "order_amount": "first",
        "currency": "first",
        "converted_at": "earliest",
        "program_version": "first",
        "variant": "first",
        "sequence": "greatest",
        "refunded": "sum",
        "reversed_at": "earliest",
    },
)
_REWARD = _upsert(
    "rm_rewards",
    ("reward_id",),
    {
        "program_id": "first",
        "referrer_id": "first",
        "conversion_id": "first",
        "referral_id": "first",
        "program_version": "first",
        "side": "first",
        "recipient": "first",
        "unit": "first",
        "amount": "first",
        "initial_status": "first",
        "created_at": "earliest",
        "available_at": "earliest",
        "issued_amount": "first",
        "issued_at": "earliest",
        "reversed_amount": "greatest",
        "reversal_kind": "greatest",
        "reversed_at": "earliest",
        "failure_reason": "greatest",
        "failed_at": "earliest",
        "variant": "first",
        "rule": "first",
        "perk": "first",
    },
)
_MILESTONE = _upsert(
    "rm_milestones",
    ("program_id", "referrer_id", "threshold"),
    {"reached_at": "earliest", "reward_id": "first", "perk": "first", "amount": "first",
     "unit": "first"},
)  # fmt: skip
_CLICKS = (
    "INSERT INTO rm_clicks_daily (participant_id, day, program_id, clicks, attributable, "
    "invites) SELECT * FROM unnest($1::uuid[], $2::date[], $3::uuid[], $4::bigint[], "
    "$5::bigint[], $6::bigint[]) "
    "ON CONFLICT (participant_id, day) DO UPDATE SET "
    "clicks = rm_clicks_daily.clicks + EXCLUDED.clicks, "
    "attributable = rm_clicks_daily.attributable + EXCLUDED.attributable, "
    "invites = rm_clicks_daily.invites + EXCLUDED.invites"
)
_ERASED = "SELECT erased_at IS NOT NULL FROM rm_participants WHERE participant_id = $1"

_REFERRAL_COLUMNS = (
    "program_id", "referrer_id", "referee_customer_id", "variant", "signed_up_at",
    "flagged_at", "flag_rules", "rejected_at", "reject_rules",
)  # fmt: skip
_CONVERSION_COLUMNS = (
    "referral_id", "program_id", "referrer_id", "order_amount", "currency", "converted_at",
    "program_version", "variant", "sequence", "refunded", "reversed_at",
)  # fmt: skip
_REWARD_COLUMNS = (
    "program_id", "referrer_id", "conversion_id", "referral_id", "program_version", "side",
    "recipient", "unit", "amount", "initial_status", "created_at", "available_at",
    "issued_amount", "issued_at", "reversed_amount", "reversal_kind", "reversed_at",
    "failure_reason", "failed_at", "variant", "rule", "perk",
)  # fmt: skip


async def _referrer_erased(conn: asyncpg.Connection, referrer_id: UUID) -> bool:
    return bool(await conn.fetchval(_ERASED, referrer_id))


async def _referral(conn: asyncpg.Connection, referral_id: UUID, **facts: Any) -> None:
    facts.setdefault("flag_rules", [])
    facts.setdefault("reject_rules", [])
    if facts.get("referee_customer_id") and await _referrer_erased(conn, facts["referrer_id"]):
        facts["referee_customer_id"] = None  # the erasure came first
    await conn.execute(_REFERRAL, referral_id, *(facts.get(c) for c in _REFERRAL_COLUMNS))


async def _conversion(conn: asyncpg.Connection, conversion_id: UUID, **facts: Any) -> None:
    facts.setdefault("sequence", 1)
    facts.setdefault("refunded", 0)
    await conn.execute(_CONVERSION, conversion_id, *(facts.get(c) for c in _CONVERSION_COLUMNS))


async def _reward(conn: asyncpg.Connection, reward_id: UUID, **facts: Any) -> None:
    if (
        facts.get("side") == "referee"
        and facts.get("recipient")
        and await _referrer_erased(conn, facts["referrer_id"])
    ):
        facts["recipient"] = None  # a referee's id is not kept once the referrer is erased
    await conn.execute(_REWARD, reward_id, *(facts.get(c) for c in _REWARD_COLUMNS))


def rule_names(rules: list[RuleOutcome], action: str) -> list[str]:
    """The rules that decided (shadow rules only observe), as a sorted list of names."""
    enforced = [r for r in rules if not r.shadow]
    deciding = [r.rule for r in enforced if r.action == action] or [r.rule for r in enforced]
    return sorted(set(deciding)) or ["unspecified"]


async def on_enrolled(conn: asyncpg.Connection, ev: ParticipantEnrolled, _: Envelope) -> None:
    await conn.execute(
        _PARTICIPANT, ev.participant_id, ev.program_id, ev.variant, ev.enrolled_at, None
    )


async def on_erased(conn: asyncpg.Connection, ev: ParticipantErased, _: Envelope) -> None:
    await conn.execute(_PARTICIPANT, ev.participant_id, ev.program_id, None, None, ev.erased_at)
    await conn.execute(
        "UPDATE rm_referrals SET referee_customer_id = NULL WHERE referrer_id = $1",
        ev.participant_id,
    )
    await conn.execute(
        "UPDATE rm_rewards SET recipient = NULL WHERE referrer_id = $1 AND side = 'referee'",
        ev.participant_id,
    )


async def on_shared(conn: asyncpg.Connection, ev: LinkShared, _: Envelope) -> None:
    await conn.execute(
        _SHARE, ev.share_id, ev.program_id, ev.participant_id, ev.channel, ev.shared_at
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
    await conn.execute(
        _MILESTONE,
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
    if counts:
        columns = list(zip(*((p, d, *rest) for (p, d), rest in counts), strict=True))
        await conn.execute(_CLICKS, *(list(c) for c in columns))


class ClickCounter(BatchConsumer):
    """Counts ``link.clicked`` into ``rm_clicks_daily``: one inbox statement for the batch and
    one upsert of one row per (participant, day) seen, so a batch of 500 clicks on 20 links
    costs two statements (see ``shared.messaging.batch`` for the guarantees it keeps)."""

    async def apply_batch(
        self, conn: asyncpg.Connection, events: list[tuple[Envelope, Any]]
    ) -> None:
        await count_clicks(conn, [ev for _, ev in events])
