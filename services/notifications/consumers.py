"""The one place that maps topics to handlers in notifications. Handlers only record what is
to be sent (the sender task makes the external calls): see README.md, "Delivery semantics"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.notifications import dispatch
from services.notifications import repository as repo
from services.notifications.policy import one_away
from services.notifications.settings import NotificationsSettings
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
from shared.contracts.base import Event
from shared.http.key_events import KEY_HANDLERS
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope
from shared.messaging.groups import ConsumerGroup


def _data(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json")


def _fanout(event: Any, occurred_at: Any, participant_id: Any) -> dispatch.Fanout:
    """The event for the program's webhook endpoints, written with the participant's message
    (one statement for both)."""
    return dispatch.fanout(
        program_id=event.program_id,
        event_type=event.TOPIC,
        occurred_at=occurred_at,
        data=_data(event),
        participant_id=participant_id,
    )


def _reuse(told: dispatch.Told, program_id: UUID) -> dict[str, Any]:
    """The definition the message read, when it is this program's and the program was known;
    otherwise {} (see ``_published_definition``)."""
    if told.who is not None and told.who.program_id == program_id:
        return told.definition
    return {}


# Consumer batches are applied concurrently, each in its own transaction, and one poll can
# hold a program's publication and its first enrolments or conversions: neither transaction
# sees the other's uncommitted rows, so the publication's catch-up would miss the count (or
# the reminder) and the conversion would miss the thresholds. This lock, per program, is
# taken by the publication before it writes, and by a handler that found no program; the
# second to take it sees what the first committed.
_PROGRAM_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 0))"


async def _published_definition(conn: asyncpg.Connection, program_id: UUID) -> dict[str, Any]:
    """The definition in force; when there is none yet, read again under the program's lock."""
    definition = await repo.definition(conn, program_id)
    if definition:
        return definition
    await conn.execute(_PROGRAM_LOCK, program_id)
    return await repo.definition(conn, program_id)


def handlers(settings: NotificationsSettings) -> dict[str, Handler]:
    async def _tell(
        conn: asyncpg.Connection,
        env: Envelope,
        event: Any,
        trigger: str,
        participant_id: Any,
        variables: dict[str, Any],
        unless_erased: bool = False,
        webhooks: dispatch.Fanout | None = None,
        count_conversion_in: UUID | None = None,
    ) -> dispatch.Told:
        """One message to a participant, on each channel their preferences allow."""
        return await dispatch.to_participant(
            conn,
            settings,
            event_id=env.id,
            trigger=trigger,
            program_id=event.program_id,
            participant_id=participant_id,
            variables=variables,
            unless_erased=unless_erased,
            webhooks=webhooks,
            count_conversion_in=count_conversion_in,
        )

    async def on_program_published(
        conn: asyncpg.Connection, event: ProgramPublished, _: Envelope
    ) -> None:
        await conn.execute(_PROGRAM_LOCK, event.program_id)
        await conn.execute(
            "INSERT INTO programs (program_id, version, effective_from, name, definition) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            event.program_id,
            event.version,
            event.effective_from,
            event.name,
            event.definition.model_dump(mode="json"),
        )
        await _catch_up(conn, event.program_id)

    async def _catch_up(conn: asyncpg.Connection, program_id: UUID) -> None:
        """Events of other topics can be handled before the program's own: reminders planned
        without it are moved to its delay, and nudges it implies are queued now."""
        definition = await repo.definition(conn, program_id)
        days = repo.policy_of(definition).share_reminder_days
        if days is not None:
            await conn.execute(
                "UPDATE reminders SET due_at = (data->>'scheduled_at')::timestamptz "
                "+ make_interval(secs => $2) WHERE program_id = $1 AND kind = 'share_reminder' "
                "AND done_at IS NULL AND data ? 'scheduled_at'",
                program_id,
                days * settings.notify_reminder_day_s,
            )
        thresholds = repo.milestone_thresholds(definition)
        if not thresholds or not repo.policy_of(definition).milestone_nudge:
            return
        rows = await conn.fetch(
            "SELECT participant_id, converted FROM participant_progress WHERE program_id = $1 "
            "AND converted + 1 = ANY($2::int[])",
            program_id,
            thresholds,
        )
        for row in rows:
            threshold = one_away(thresholds, row["converted"])
            if threshold is not None:
                await repo.schedule_reminder(
                    conn,
                    program_id=program_id,
                    participant_id=row["participant_id"],
                    kind="milestone_nudge",
                    dedupe=str(threshold),
                    due_at=datetime.now(UTC),
                    data={"threshold": threshold, "converted": row["converted"]},
                )

    async def on_participant_enrolled(
        conn: asyncpg.Connection, event: ParticipantEnrolled, env: Envelope
    ) -> None:
        await conn.execute(
            "INSERT INTO participants (participant_id, program_id, email, name, locale, "
            "link_url, variant, enrolled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT DO NOTHING",
            event.participant_id,
            event.program_id,
            event.email,
            event.name,
            event.locale,
            event.link_url,
            event.variant,
            event.enrolled_at,
        )
        told = await _tell(
            conn,
            env,
            event,
            "welcome",
            event.participant_id,
            variables={},
            unless_erased=True,
            webhooks=_fanout(event, event.enrolled_at, event.participant_id),
        )
        if told.who is not None and told.who.erased:
            return  # a late copy of an erased participant's enrolment: nothing to say
        definition = _reuse(told, event.program_id) or await _published_definition(
            conn, event.program_id
        )
        days = repo.policy_of(definition, event.variant).share_reminder_days
        if days is not None:
            # Counted from now rather than enrolled_at, so a replayed log does not fire
            # every old reminder at once.
            now = datetime.now(UTC)
            await repo.schedule_reminder(
                conn,
                program_id=event.program_id,
                participant_id=event.participant_id,
                kind="share_reminder",
                dedupe="",
                due_at=now + timedelta(seconds=days * settings.notify_reminder_day_s),
                data={"scheduled_at": now.isoformat()},
            )

    async def on_link_clicked(conn: asyncpg.Connection, event: LinkClicked, _: Envelope) -> None:
        # Every click counts, bots and link previews included: a preview means the link
        # was pasted somewhere, which is what the share reminder asks for.
        await conn.execute(
            "INSERT INTO participant_clicks (participant_id, clicks) VALUES ($1, 1) "
            "ON CONFLICT (participant_id) DO UPDATE SET clicks = participant_clicks.clicks + 1",
            event.participant_id,
        )

    async def on_signed_up(
        conn: asyncpg.Connection, event: ReferralSignedUp, env: Envelope
    ) -> None:
        # The referee is known here only by the company's customer id (no address, no
        # locale): greeting them is the company's move, on the webhook below.
        await _tell(
            conn,
            env,
            event,
            "referral_signed_up",
            event.referrer_id,
            variables={},
            webhooks=_fanout(event, event.signed_up_at, event.referrer_id),
        )

    async def on_converted(
        conn: asyncpg.Connection, event: ReferralConverted, env: Envelope
    ) -> None:
        # Milestones count referrals, not recurring purchases: only a first purchase is
        # counted (by the statement that reads the referrer).
        first = event.sequence == 1
        told = await _tell(
            conn,
            env,
            event,
            "referral_converted",
            event.referrer_id,
            variables={"order_amount": (event.amount, event.currency)},
            webhooks=_fanout(event, event.converted_at, event.referrer_id),
            count_conversion_in=event.program_id if first else None,
        )
        if not first or told.converted is None:
            return
        converted = told.converted
        # What _tell read is still true (nothing in between writes participants or programs).
        who = told.who
        definition = _reuse(told, event.program_id) or await _published_definition(
            conn, event.program_id
        )
        policy = repo.policy_of(definition, who.variant if who else None)
        threshold = one_away(repo.milestone_thresholds(definition), converted)
        if policy.milestone_nudge and threshold is not None:
            await repo.schedule_reminder(
                conn,
                program_id=event.program_id,
                participant_id=event.referrer_id,
                kind="milestone_nudge",
                dedupe=str(threshold),
                due_at=datetime.now(UTC),
                data={"threshold": threshold, "converted": converted},
            )

    async def on_reward_issued(
        conn: asyncpg.Connection, event: RewardIssued, env: Envelope
    ) -> None:
        webhooks = _fanout(event, event.issued_at, event.referrer_id)
        if event.side != "referrer" or str(getattr(event, "rule", None) or "").startswith(
            "milestone:"
        ):
            # The referee has no address here: the webhook is their channel. A milestone's
            # grant: milestone.reached tells it, once.
            await dispatch.to_webhooks_of(conn, env.id, webhooks)
            return
        definition = await repo.definition(conn, event.program_id, event.program_version)
        # With a hold, reward.issued is published when the held reward becomes available.
        held = repo.hold_days(definition) > 0 and repo.policy_of(definition).reward_available
        await _tell(
            conn,
            env,
            event,
            "reward_available" if held else "reward_issued",
            event.referrer_id,
            variables={
                "amount": (event.amount, event.unit),
                "coupon_code": getattr(event, "coupon_code", None),
            },
            webhooks=webhooks,
        )

    async def on_milestone(
        conn: asyncpg.Connection, event: MilestoneReached, env: Envelope
    ) -> None:
        await _tell(
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
            webhooks=_fanout(event, event.reached_at, event.referrer_id),
        )

    async def on_reward_failed(
        conn: asyncpg.Connection, event: RewardFailed, env: Envelope
    ) -> None:
        await dispatch.to_ops(
            conn,
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
        await dispatch.to_webhooks(
            conn,
            event_id=env.id,
            program_id=event.program_id,
            event_type=event.TOPIC,
            occurred_at=event.failed_at,
            data=_data(event),
        )

    async def on_flagged(conn: asyncpg.Connection, event: ReferralFlagged, env: Envelope) -> None:
        await dispatch.to_ops(
            conn,
            event_id=env.id,
            program_id=event.program_id,
            trigger="referral_flagged",
            variables={
                "referral_id": str(event.referral_id),
                "rules": ", ".join(r.rule for r in event.rules if not r.shadow) or "-",
            },
        )
        await dispatch.to_webhooks(
            conn,
            event_id=env.id,
            program_id=event.program_id,
            event_type=event.TOPIC,
            occurred_at=event.flagged_at,
            data=_data(event),
        )

    async def on_erased(conn: asyncpg.Connection, event: ParticipantErased, _: Envelope) -> None:
        await erase(conn, event.participant_id, event.program_id)

    return {
        ProgramPublished.TOPIC: on_program_published,
        ParticipantEnrolled.TOPIC: on_participant_enrolled,
        LinkClicked.TOPIC: on_link_clicked,
        ReferralSignedUp.TOPIC: on_signed_up,
        ReferralConverted.TOPIC: on_converted,
        RewardIssued.TOPIC: on_reward_issued,
        MilestoneReached.TOPIC: on_milestone,
        RewardFailed.TOPIC: on_reward_failed,
        ReferralFlagged.TOPIC: on_flagged,
        ParticipantErased.TOPIC: on_erased,
        **KEY_HANDLERS,
    }


async def erase(conn: asyncpg.Connection, participant_id: UUID, program_id: UUID) -> None:
    """Drop the personal data held about a participant. The delivery log keeps its rows (what
    was sent when, for audit) without the address or the rendered content. A tombstone row
    keeps a late enrolment event from bringing the data back."""
    await conn.execute(
        "INSERT INTO participants (participant_id, program_id, link_url, erased_at) "
        "VALUES ($1, $2, '', now()) ON CONFLICT DO NOTHING",
        participant_id,
        program_id,
    )
    await conn.execute(
        "UPDATE participants SET email = NULL, name = NULL, erased_at = coalesce(erased_at, now()) "
        "WHERE participant_id = $1",
        participant_id,
    )
    await conn.execute(
        "UPDATE deliveries SET address = NULL, payload = '{}'::jsonb, "
        "status = CASE WHEN status = 'pending' THEN 'skipped' ELSE status END, "
        "reason = CASE WHEN status = 'pending' THEN 'participant erased' ELSE reason END "
        "WHERE participant_id = $1",
        participant_id,
    )
    await conn.execute("DELETE FROM notifications WHERE participant_id = $1", participant_id)
    await conn.execute("DELETE FROM preferences WHERE participant_id = $1", participant_id)
    await conn.execute(
        "UPDATE reminders SET done_at = now(), outcome = 'participant erased' "
        "WHERE participant_id = $1 AND done_at IS NULL",
        participant_id,
    )


def consumer_groups(settings: NotificationsSettings) -> list[ConsumerGroup]:
    return [ConsumerGroup(handlers(settings))]
