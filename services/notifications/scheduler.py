"""Reminders: rows due at a time, claimed with ``FOR UPDATE SKIP LOCKED`` by whichever replica
gets there first, decided on then (did the participant get a click meanwhile?) and turned
into messages in the same transaction. The rows are in Postgres, so a restart loses nothing:
what fell due while no process ran is sent at the next start."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import asyncpg

from services.notifications import dispatch
from services.notifications import repository as repo
from services.notifications.metrics import ENDPOINTS_DISABLED_NOW, OLDEST_PENDING_AGE, PENDING
from services.notifications.settings import NotificationsSettings
from shared.aio import sleep_unless

log = logging.getLogger(__name__)
_GAUGE_INTERVAL_S = 5.0

_CLAIM = (
    "SELECT id, program_id, participant_id, kind, data FROM reminders "
    "WHERE done_at IS NULL AND due_at <= now() ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED"
)


async def _deferred(
    conn: asyncpg.Connection, settings: NotificationsSettings, reminder: dict[str, Any]
) -> str:
    """A message that waited for its participant's enrolment: send it if they are known now
    (or, after the last look, without their details); otherwise look again later."""
    data = dict(reminder["data"])
    known = await repo.participant(conn, reminder["participant_id"]) is not None
    tries = int(data.get("tries", 0)) + 1
    if not known and tries < dispatch.DEFER_TRIES:
        await conn.execute(
            "UPDATE reminders SET data = $2, due_at = now() + make_interval(secs => $3) "
            "WHERE id = $1",
            reminder["id"],
            {**data, "tries": tries},
            dispatch.DEFER_S,
        )
        return "waiting"
    await dispatch.to_participant(
        conn,
        settings,
        event_id=uuid.UUID(data["event_id"]),
        trigger=data["trigger"],
        program_id=reminder["program_id"],
        participant_id=reminder["participant_id"],
        variables=data["variables"],
        defer_if_unknown=False,
    )
    return "sent" if known else "sent without the participant's details"


async def _decide(conn: asyncpg.Connection, reminder: dict[str, Any]) -> str | None:
    """None to send, otherwise why not."""
    who = await repo.participant(conn, reminder["participant_id"])
    if who is None or who.erased:
        return "participant unknown or erased"
    policy = repo.policy_of(await repo.definition(conn, who.program_id), who.variant)
    if reminder["kind"] == "share_reminder":
        if policy.share_reminder_days is None:
            return "share reminders turned off"
        clicks = await conn.fetchval(
            "SELECT clicks FROM participant_clicks WHERE participant_id = $1", who.participant_id
        )
        if clicks:
            return f"link already clicked ({clicks})"
    elif reminder["kind"] == "milestone_nudge" and not policy.milestone_nudge:
        return "milestone nudges turned off"
    return None


async def run_due(pool: asyncpg.Pool, settings: NotificationsSettings, limit: int = 100) -> int:
    """Handle the reminders due now. Returns how many were taken."""
    async with pool.acquire() as conn, conn.transaction():
        rows = [dict(r) for r in await conn.fetch(_CLAIM, limit)]
        for reminder in rows:
            if reminder["kind"] == dispatch.DEFERRED:
                outcome = await _deferred(conn, settings, reminder)
                if outcome != "waiting":
                    await conn.execute(
                        "UPDATE reminders SET done_at = now(), outcome = $2 WHERE id = $1",
                        reminder["id"],
                        outcome,
                    )
                continue
            reason = await _decide(conn, reminder)
            if reason is None:
                await dispatch.to_participant(
                    conn,
                    settings,
                    event_id=reminder["id"],
                    trigger=reminder["kind"],
                    program_id=reminder["program_id"],
                    participant_id=reminder["participant_id"],
                    variables=dict(reminder["data"]),
                )
            await conn.execute(
                "UPDATE reminders SET done_at = now(), outcome = $2 WHERE id = $1",
                reminder["id"],
                reason or "sent",
            )
    return len(rows)


async def update_gauges(pool: asyncpg.Pool) -> None:
    """Backlog per channel and disabled endpoints, for ops (a stuck sender shows here)."""
    rows = await pool.fetch(
        "SELECT channel, count(*) AS n, "
        "coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age "
        "FROM deliveries WHERE status = 'pending' GROUP BY channel"
    )
    seen = {r["channel"]: r for r in rows}
    for channel in ("email", "webhook"):
        row = seen.get(channel)
        PENDING.labels(channel).set(row["n"] if row else 0)
        OLDEST_PENDING_AGE.labels(channel).set(float(row["age"]) if row else 0.0)
    ENDPOINTS_DISABLED_NOW.set(
        await pool.fetchval("SELECT count(*) FROM webhook_endpoints WHERE disabled_at IS NOT NULL")
    )


async def run(pool: asyncpg.Pool, settings: NotificationsSettings, stop: asyncio.Event) -> None:
    gauges_at = 0.0
    while not stop.is_set():
        try:
            taken = await run_due(pool, settings)
            if time.monotonic() - gauges_at > _GAUGE_INTERVAL_S:
                gauges_at = time.monotonic()
                await update_gauges(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("scheduler: database unavailable (%s), retrying", type(exc).__name__)
            taken = 0
        if taken == 0 and await sleep_unless(stop, settings.notify_scheduler_poll_interval_s):
            return
