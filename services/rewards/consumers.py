"""The one place that maps topics to handlers in rewards."""

from __future__ import annotations

import hashlib

import asyncpg

from services.rewards import ledger, lifecycle
from services.rewards.issuing import (
    REFERRER_LOCK_SQL,
    lock_program_versions,
    lock_referrer,
    referrer_lock_key,
    reward_conversion,
    reward_recorded,
)
from shared.contracts import (
    ParticipantErased,
    ProgramPublished,
    ReferralConverted,
    ReferralReversed,
)
from shared.http.key_events import KEY_HANDLERS
from shared.http.outbound import new_webhook_secret
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope
from shared.messaging.groups import ConsumerGroup


async def on_program_published(
    conn: asyncpg.Connection, event: ProgramPublished, _: Envelope
) -> None:
    await lock_program_versions(conn, event.program_id)
    await conn.execute(
        "INSERT INTO program_versions (program_id, version, effective_from, definition) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        event.program_id,
        event.version,
        event.effective_from,
        event.definition.model_dump(mode="json"),
    )
    policies = [event.definition.rewards] + [
        v.rewards for v in event.definition.variants if v.rewards is not None
    ]
    if any(p.fulfilment.kind == "webhook" for p in policies):
        # The signing secret never travels on the bus: the company reads it from our API.
        await conn.execute(
            "INSERT INTO program_secrets (program_id, webhook_secret) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            event.program_id,
            new_webhook_secret(),
        )
    waiting = await conn.fetch(
        "SELECT conversion_id FROM conversions "
        "WHERE program_id = $1 AND status = 'awaiting_program' ORDER BY converted_at",
        event.program_id,
    )
    for row in waiting:
        await reward_conversion(conn, row["conversion_id"])


async def on_referral_converted(
    conn: asyncpg.Connection, event: ReferralConverted, _: Envelope
) -> None:
    # The per-referrer lock (see ``lock_referrer``) is taken by the insert itself: one round
    # trip, and the lock is held before anything of the referrer's history is read.
    conversion = await conn.fetchrow(
        "INSERT INTO conversions (conversion_id, referral_id, program_id, referrer_id, "
        "referee_customer_id, order_id, amount, currency, converted_at, program_version, status, "
        "variant, sequence) "
        "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'awaiting_program', $11, $12 "
        f"FROM (SELECT {REFERRER_LOCK_SQL.format(param='$13')}) AS lock "
        "ON CONFLICT DO NOTHING RETURNING *",
        event.conversion_id,
        event.referral_id,
        event.program_id,
        event.referrer_id,
        event.referee_customer_id,
        event.order_id,
        event.amount,
        event.currency,
        event.converted_at,
        event.program_version,
        event.variant,
        event.sequence,
        referrer_lock_key(event.program_id, event.referrer_id),
    )
    if conversion is None:
        return  # seen before: rewarded, or waiting for its program version
    await reward_recorded(conn, conversion)


async def on_referral_reversed(
    conn: asyncpg.Connection, event: ReferralReversed, _: Envelope
) -> None:
    """A full refund cancels what is still on hold and claws back what was issued. A partial
    refund shrinks percentage rewards in proportion (fixed rewards are per converted
    referral and stay)."""
    await lock_referrer(conn, event.program_id, event.referrer_id)
    await conn.execute(
        "INSERT INTO reversals (refund_id, conversion_id, full_reversal, refunded_amount, "
        "reversed_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        event.refund_id,
        event.conversion_id,
        event.full,
        event.refunded_amount,
        event.reversed_at,
    )
    if not event.full:
        await _partial_refund(conn, event)
        return
    await conn.execute(
        "UPDATE conversions SET status = 'reversed' WHERE conversion_id = $1 "
        "AND status = 'rewarded'",
        event.conversion_id,
    )
    ids = await conn.fetch(
        "SELECT id FROM rewards WHERE conversion_id = $1 AND rule = 'base' ORDER BY side",
        event.conversion_id,
    )
    now = lifecycle.now_utc()
    for row in ids:
        reward = await lifecycle.load(conn, row["id"])
        if reward is None:
            continue
        policy = await lifecycle.policy_for(conn, reward)
        await lifecycle.reverse(conn, reward, policy=policy, now=now)


async def _partial_refund(conn: asyncpg.Connection, event: ReferralReversed) -> None:
    conversion = await conn.fetchrow(
        "SELECT amount, status FROM conversions WHERE conversion_id = $1 FOR UPDATE",
        event.conversion_id,
    )
    if conversion is None or conversion["status"] != "rewarded" or conversion["amount"] <= 0:
        return  # not rewarded yet: it will be computed on what is left then
    refunded = await conn.fetchval(
        "SELECT coalesce(sum(refunded_amount), 0) FROM reversals "
        "WHERE conversion_id = $1 AND NOT full_reversal",
        event.conversion_id,
    )
    left = max(0, conversion["amount"] - int(refunded))
    ids = await conn.fetch(
        "SELECT id FROM rewards WHERE conversion_id = $1 AND rule = 'base' ORDER BY side",
        event.conversion_id,
    )
    now = lifecycle.now_utc()
    for row in ids:
        reward = await lifecycle.load(conn, row["id"])
        if reward is None:
            continue
        policy = await lifecycle.policy_for(conn, reward)
        side = policy.referrer if reward["side"] == "referrer" else policy.referee
        if side is None or side.percent_bp is None:
            continue
        # What was granted before any partial refund, then scaled to what is left.
        taken = await conn.fetchval(
            "SELECT coalesce(sum(p.amount), 0) FROM ledger_entries e "
            "JOIN ledger_postings p ON p.entry_id = e.id "
            "WHERE e.reward_id = $1 AND e.kind LIKE 'adjust:%' AND p.amount > 0",
            reward["id"],
        )
        granted = reward["amount"] + int(taken)
        await lifecycle.reduce(
            conn,
            reward,
            target=granted * left // conversion["amount"],
            entry_kind=f"adjust:{event.refund_id}",
            policy=policy,
            now=now,
        )


def _hashed(value: str) -> str:
    return ledger.ERASED_PREFIX + hashlib.sha256(value.encode()).hexdigest()


async def on_participant_erased(
    conn: asyncpg.Connection, event: ParticipantErased, _: Envelope
) -> None:
    """The ledger keeps its amounts (accounts carry only the pseudonymous participant id and
    hashed referee ids). What links this person to the people they referred, the referees'
    customer ids in clear, is replaced by a one-way hash."""
    await conn.execute(
        "INSERT INTO erased_participants (participant_id, erased_at) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING",
        event.participant_id,
        event.erased_at,
    )
    rows = await conn.fetch(
        "SELECT DISTINCT referee_customer_id FROM conversions "
        "WHERE program_id = $1 AND referrer_id = $2 AND referee_customer_id NOT LIKE 'erased:%'",
        event.program_id,
        event.participant_id,
    )
    for row in rows:
        clear = row["referee_customer_id"]
        await conn.execute(
            "UPDATE conversions SET referee_customer_id = $3 "
            "WHERE program_id = $1 AND referrer_id = $2 AND referee_customer_id = $4",
            event.program_id,
            event.participant_id,
            _hashed(clear),
            clear,
        )
        await conn.execute(
            "UPDATE rewards SET recipient = $3 WHERE program_id = $1 AND referrer_id = $2 "
            "AND side = 'referee' AND recipient = $4",
            event.program_id,
            event.participant_id,
            _hashed(clear),
            clear,
        )


HANDLERS: dict[str, Handler] = {
    ProgramPublished.TOPIC: on_program_published,
    **KEY_HANDLERS,
    ReferralConverted.TOPIC: on_referral_converted,
    ReferralReversed.TOPIC: on_referral_reversed,
    ParticipantErased.TOPIC: on_participant_erased,
}


def consumer_groups(_: object = None) -> list[ConsumerGroup]:
    return [ConsumerGroup(HANDLERS)]
