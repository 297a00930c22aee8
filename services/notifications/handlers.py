"""What each event does: who gets which message, and what is kept of it. Handlers only record
what is to be sent (``delivery`` makes the external calls): see README.md, "Delivery
semantics". Those that need the settings or the definitions cache take a ``Context`` first;
``consumers`` binds it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.notifications import participants, recording, reminders
from services.notifications.context import Context
from services.notifications.policy import (
    hold_days,
    milestone_thresholds,
    one_away,
    policy_of,
    webhook_status,
)
from services.notifications.repository import participants as participant_rows
from services.notifications.repository import programs
from services.notifications.repository.deliveries import Fanout
from shared.contracts import (
    LinkClicked,
    MilestoneReached,
    ParticipantEnrolled,
    ParticipantErased,
    ProgramPublished,
    ReferralConverted,
    ReferralFlagged,
    ReferralSignedUp,
    RewardFailed,
    RewardIssued,
)
from shared.messaging.envelope import Envelope


def _fanout(event: Any, occurred_at: datetime, participant_id: UUID | None) -> Fanout:
    """The event for the program's webhook endpoints, with the status a CRM records."""
    return recording.fanout(
        program_id=event.program_id,
        event_type=event.TOPIC,
        occurred_at=occurred_at,
        data={**event.model_dump(mode="json"), **webhook_status(event.TOPIC)},
        participant_id=participant_id,
    )


async def _tell(
    ctx: Context,
    conn: asyncpg.Connection,
    env: Envelope,
    event: Any,
    trigger: str,
    participant_id: UUID,
    variables: dict[str, Any],
    *,
    occurred_at: datetime,
    unless_erased: bool = False,
    count_conversion_in: UUID | None = None,
) -> recording.Told:
    """One message to a participant, on each channel their preferences allow, written with
    the event's webhooks (one statement for both)."""
    return await recording.to_participant(
        conn,
        ctx,
        event_id=env.id,
        trigger=trigger,
        program_id=event.program_id,
        participant_id=participant_id,
        variables=variables,
        unless_erased=unless_erased,
        webhooks=_fanout(event, occurred_at, participant_id),
        count_conversion_in=count_conversion_in,
    )


def _reuse(told: recording.Told, program_id: UUID) -> dict[str, Any]:
    """The definition the message read, when it is this program's and the program was known;
    otherwise {} (then ``Definitions.published`` reads it, under the program's lock)."""
    if told.who is not None and told.who.program_id == program_id:
        return told.definition
    return {}


async def on_program_published(
    ctx: Context, conn: asyncpg.Connection, event: ProgramPublished, _: Envelope
) -> None:
    # Before writing: a first conversion or enrolment of the program may be applied
    # concurrently (see ``repository.programs.lock_program``).
    await programs.lock_program(conn, event.program_id)
    await programs.insert_version(
        conn,
        program_id=event.program_id,
        version=event.version,
        effective_from=event.effective_from,
        name=event.name,
        definition=event.definition.model_dump(mode="json"),
    )
    await _catch_up(ctx, conn, event.program_id)


async def _catch_up(ctx: Context, conn: asyncpg.Connection, program_id: UUID) -> None:
    """Events of other topics can be handled before the program's own: reminders planned
    without it are moved to its delay, and nudges it implies are queued now."""
    definition = await ctx.definitions.get(conn, program_id)
    days = policy_of(definition).share_reminder_days
    if days is not None:
        await reminders.move_share_reminders(conn, ctx, program_id, days)
    thresholds = milestone_thresholds(definition)
    if not thresholds or not policy_of(definition).milestone_nudge:
        return
    for participant_id, converted in await participant_rows.one_short_of(
        conn, program_id, thresholds
    ):
        threshold = one_away(thresholds, converted)
        if threshold is not None:
            await reminders.plan_milestone_nudge(
                conn, program_id, participant_id, threshold, converted
            )


async def on_participant_enrolled(
    ctx: Context, conn: asyncpg.Connection, event: ParticipantEnrolled, env: Envelope
) -> None:
    await participant_rows.insert(
        conn,
        participant_id=event.participant_id,
        program_id=event.program_id,
        email=event.email,
        name=event.name,
        locale=event.locale,
        link_url=event.link_url,
        variant=event.variant,
        enrolled_at=event.enrolled_at,
    )
    told = await _tell(
        ctx,
        conn,
        env,
        event,
        "welcome",
        event.participant_id,
        variables={},
        occurred_at=event.enrolled_at,
        unless_erased=True,
    )
    if told.who is not None and told.who.erased:
        return  # a late copy of an erased participant's enrolment: nothing to say
    definition = _reuse(told, event.program_id) or await ctx.definitions.published(
        conn, event.program_id
    )
    days = policy_of(definition, event.variant).share_reminder_days
    if days is not None:
        await reminders.plan_share_reminder(conn, ctx, event.program_id, event.participant_id, days)


async def on_link_clicked(conn: asyncpg.Connection, event: LinkClicked, _: Envelope) -> None:
    # Every click counts, bots and link previews included: a preview means the link was
    # pasted somewhere, which is what the share reminder asks for.
    await participant_rows.count_click(conn, event.participant_id)


async def on_signed_up(
    ctx: Context, conn: asyncpg.Connection, event: ReferralSignedUp, env: Envelope
) -> None:
    # The referee is known here only by the company's customer id (no address, no locale):
    # greeting them is the company's move, on the webhook.
    await _tell(
        ctx,
        conn,
        env,
        event,
        "referral_signed_up",
        event.referrer_id,
        variables={},
        occurred_at=event.signed_up_at,
    )


async def on_converted(
    ctx: Context, conn: asyncpg.Connection, event: ReferralConverted, env: Envelope
) -> None:
    # Milestones count referrals, not recurring purchases: only a first purchase is counted
    # (by the statement that reads the referrer).
    first = event.sequence == 1
    told = await _tell(
        ctx,
        conn,
        env,
        event,
        "referral_converted",
        event.referrer_id,
        variables={"order_amount": (event.amount, event.currency)},
        occurred_at=event.converted_at,
        count_conversion_in=event.program_id if first else None,
    )
    if not first or told.converted is None:
        return
    # What _tell read is still true (nothing in between writes participants or programs).
    definition = _reuse(told, event.program_id) or await ctx.definitions.published(
        conn, event.program_id
    )
    policy = policy_of(definition, told.who.variant if told.who else None)
    threshold = one_away(milestone_thresholds(definition), told.converted)
    if policy.milestone_nudge and threshold is not None:
        await reminders.plan_milestone_nudge(
            conn, event.program_id, event.referrer_id, threshold, told.converted
        )


async def on_reward_issued(
    ctx: Context, conn: asyncpg.Connection, event: RewardIssued, env: Envelope
) -> None:
    if event.side != "referrer" or str(getattr(event, "rule", None) or "").startswith("milestone:"):
        # The referee has no address here: the webhook is their channel. A milestone's
        # grant: milestone.reached tells it, once.
        await recording.to_webhooks(
            conn, env.id, _fanout(event, event.issued_at, event.referrer_id)
        )
        return
    definition = await ctx.definitions.get(conn, event.program_id, event.program_version)
    # With a hold, reward.issued is published when the held reward becomes available.
    held = hold_days(definition) > 0 and policy_of(definition).reward_available
    await _tell(
        ctx,
        conn,
        env,
        event,
        "reward_available" if held else "reward_issued",
        event.referrer_id,
        variables={
            "amount": (event.amount, event.unit),
            "coupon_code": getattr(event, "coupon_code", None),
        },
        occurred_at=event.issued_at,
    )


async def on_milestone(
    ctx: Context, conn: asyncpg.Connection, event: MilestoneReached, env: Envelope
) -> None:
    await _tell(
        ctx,
        conn,
        env,
        event,
        "milestone_reached",
        event.referrer_id,
        variables={
            "threshold": event.threshold,
            "perk": event.perk,
            "amount": (event.amount, event.unit) if event.amount is not None else None,
        },
        occurred_at=event.reached_at,
    )


async def on_reward_failed(
    ctx: Context, conn: asyncpg.Connection, event: RewardFailed, env: Envelope
) -> None:
    await recording.to_ops(
        conn,
        ctx,
        event_id=env.id,
        program_id=event.program_id,
        trigger="reward_failed",
        variables={
            "reward_id": str(event.reward_id),
            "amount": (event.amount, event.unit),
            "side": event.side,
            "reason": event.reason,
        },
    )
    await recording.to_webhooks(conn, env.id, _fanout(event, event.failed_at, None))


async def on_flagged(
    ctx: Context, conn: asyncpg.Connection, event: ReferralFlagged, env: Envelope
) -> None:
    await recording.to_ops(
        conn,
        ctx,
        event_id=env.id,
        program_id=event.program_id,
        trigger="referral_flagged",
        variables={
            "referral_id": str(event.referral_id),
            "rules": ", ".join(r.rule for r in event.rules if not r.shadow) or "-",
        },
    )
    await recording.to_webhooks(conn, env.id, _fanout(event, event.flagged_at, None))


async def on_erased(conn: asyncpg.Connection, event: ParticipantErased, _: Envelope) -> None:
    await participants.erase(conn, event.participant_id, event.program_id)
