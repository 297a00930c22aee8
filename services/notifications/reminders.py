"""Reminders: rows due at a time, claimed (row locks with SKIP LOCKED) by whichever replica
gets there first, decided on then (did the participant get a click meanwhile?) and turned
into messages in the same transaction. The rows are in Postgres, so a restart loses nothing:
what fell due while no process ran is sent at the next start."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.notifications import recording
from services.notifications.context import Context
from services.notifications.metrics import update_gauges
from services.notifications.policy import policy_of
from services.notifications.repository import participants
from services.notifications.repository import reminders as stored
from shared.aio import sleep_unless

log = logging.getLogger(__name__)
_GAUGE_INTERVAL_S = 5.0


async def plan_share_reminder(
    conn: asyncpg.Connection, ctx: Context, program_id: UUID, participant_id: UUID, days: float
) -> None:
    """A share reminder ``days`` reminder-days from now. Counted from now rather than the
    enrolment, so a replayed log does not fire every old reminder at once."""
    now = datetime.now(UTC)
    await stored.schedule(
        conn,
        program_id=program_id,
        participant_id=participant_id,
        kind="share_reminder",
        dedupe="",
        due_at=now + timedelta(seconds=days * ctx.settings.notify_reminder_day_s),
        data={"scheduled_at": now.isoformat()},
    )


async def move_share_reminders(
    conn: asyncpg.Connection, ctx: Context, program_id: UUID, days: float
) -> None:
    """The program's open share reminders, due ``days`` reminder-days after they were planned
    (for those planned before the program was known)."""
    await stored.move_share_reminders(conn, program_id, days * ctx.settings.notify_reminder_day_s)


async def plan_milestone_nudge(
    conn: asyncpg.Connection, program_id: UUID, participant_id: UUID, threshold: int, converted: int
) -> None:
    """'One more referral unlocks …', due now, once per threshold."""
    await stored.schedule(
        conn,
        program_id=program_id,
        participant_id=participant_id,
        kind="milestone_nudge",
        dedupe=str(threshold),
        due_at=datetime.now(UTC),
        data={"threshold": threshold, "converted": converted},
    )


async def _deferred(conn: asyncpg.Connection, ctx: Context, reminder: dict[str, Any]) -> str:
    """A message that waited for its participant's enrolment: send it if they are known now
    (or, after the last look, without their details); otherwise look again later."""
    data = dict(reminder["data"])
    known = await participants.get(conn, reminder["participant_id"]) is not None
    tries = int(data.get("tries", 0)) + 1
    if not known and tries < recording.DEFER_TRIES:
        await stored.postpone(conn, reminder["id"], {**data, "tries": tries}, recording.DEFER_S)
        return "waiting"
    await recording.to_participant(
        conn,
        ctx,
        event_id=uuid.UUID(data["event_id"]),
        trigger=data["trigger"],
        program_id=reminder["program_id"],
        participant_id=reminder["participant_id"],
        variables=data["variables"],
        defer_if_unknown=False,
    )
    return "sent" if known else "sent without the participant's details"


async def _decide(conn: asyncpg.Connection, ctx: Context, reminder: dict[str, Any]) -> str | None:
    """None to send, otherwise why not."""
    who = await participants.get(conn, reminder["participant_id"])
    if who is None or who.erased:
        return "participant unknown or erased"
    policy = policy_of(await ctx.definitions.get(conn, who.program_id), who.variant)
    if reminder["kind"] == "share_reminder":
        if policy.share_reminder_days is None:
            return "share reminders turned off"
        clicks = await participants.clicks(conn, who.participant_id)
        if clicks:
            return f"link already clicked ({clicks})"
    elif reminder["kind"] == "milestone_nudge" and not policy.milestone_nudge:
        return "milestone nudges turned off"
    return None


async def run_due(pool: asyncpg.Pool, ctx: Context, limit: int = 100) -> int:
    """Handle the reminders due now. Returns how many were taken."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await stored.claim_due(conn, limit)
        for reminder in rows:
            if reminder["kind"] == recording.DEFERRED:
                outcome = await _deferred(conn, ctx, reminder)
                if outcome != "waiting":
                    await stored.done(conn, reminder["id"], outcome)
                continue
            reason = await _decide(conn, ctx, reminder)
            if reason is None:
                await recording.to_participant(
                    conn,
                    ctx,
                    event_id=reminder["id"],
                    trigger=reminder["kind"],
                    program_id=reminder["program_id"],
                    participant_id=reminder["participant_id"],
                    variables=dict(reminder["data"]),
                )
            await stored.done(conn, reminder["id"], reason or "sent")
    return len(rows)


async def run(pool: asyncpg.Pool, ctx: Context, stop: asyncio.Event) -> None:
    """The scheduler of every replica: due reminders, and the delivery gauges every 5 s."""
    gauges_at = 0.0
    while not stop.is_set():
        try:
            taken = await run_due(pool, ctx)
            if time.monotonic() - gauges_at > _GAUGE_INTERVAL_S:
                gauges_at = time.monotonic()
                await update_gauges(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("scheduler: database unavailable (%s), retrying", type(exc).__name__)
            taken = 0
        if taken == 0 and await sleep_unless(stop, ctx.settings.notify_scheduler_poll_interval_s):
            return
