"""Deciding pending signups: the moment their click (``link.clicked``) or their referrer's
enrolment (``participant.enrolled``) arrives, inside that consumer's transaction, with
``signups.decide`` (the rules in force at the signup's own time); and a background sweep,
claimed with ``SKIP LOCKED`` so replicas share it, that gives up overdue ones and decides any
whose event was stored while the signup itself was being recorded. Purchases and refunds held
meanwhile are applied once the signup is decided, in the order they arrived."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.attribution.conversions import track_conversion, track_refund
from services.attribution.events import enqueue_pending
from services.attribution.models import ConversionIn, RefundIn
from services.attribution.policy import NEVER_ARRIVED
from services.attribution.repository import pending
from services.attribution.signups import decide, record_decision
from shared.aio import sleep_unless
from shared.http.problems import Problem

log = logging.getLogger(__name__)

_CLAIM_BATCH = 100


def _waiting_for(signup: Any) -> str:
    return "click" if signup["click_id"] is not None else "code"


async def _finish(conn: asyncpg.Connection, signup: dict[str, Any], expires_at: datetime) -> None:
    """After the one transition out of pending: its event, then what was held."""
    await enqueue_pending(conn, signup, _waiting_for(signup), expires_at, resolved=True)
    await apply_held(conn, signup)


async def resolve(conn: asyncpg.Connection, rows: list[asyncpg.Record], now: datetime) -> int:
    """Decide locked pending signups whose click or code is known now. Returns how many."""
    done = 0
    for row in rows:
        signup = dict(row)
        verdict = await decide(conn, signup, now)
        if verdict.waiting_for is not None or not await pending.set_decided(conn, signup):
            continue
        await record_decision(conn, signup, verdict, now)
        await _finish(conn, signup, row["pending_until"])
        done += 1
    return done


async def on_clicks(conn: asyncpg.Connection, click_ids: list[UUID]) -> int:
    """Decide the pending signups naming these clicks (just stored by the caller)."""
    rows = await pending.for_clicks(conn, click_ids)
    return await resolve(conn, rows, datetime.now(UTC)) if rows else 0


async def on_code(conn: asyncpg.Connection, program_id: UUID, code: str) -> int:
    """Decide the pending signups that typed ``code`` (a participant just enrolled)."""
    rows = await pending.for_code(conn, program_id, code)
    return await resolve(conn, rows, datetime.now(UTC)) if rows else 0


async def apply_held(conn: asyncpg.Connection, signup: dict[str, Any]) -> None:
    """Apply the held purchases and refunds of a decided signup, in arrival order, each as
    if it had been tracked when it was received. Each runs in a savepoint: one refused (an
    unattributed signup's purchase, say) is recorded with its reason and the rest go on."""
    for item in await pending.held_of(conn, signup["id"]):
        try:
            async with conn.transaction():
                if item["kind"] == "conversion":
                    body = ConversionIn.model_validate(item["body"])
                    status, _ = await track_conversion(
                        conn, signup["program_id"], body, item["received_at"]
                    )
                else:
                    refund = RefundIn.model_validate(item["body"])
                    status, _ = await track_refund(
                        conn, signup["program_id"], refund, item["received_at"]
                    )
            outcome = f"applied ({status})"
        except Problem as exc:
            outcome = f"refused: {exc.type}"
        await pending.mark_applied(conn, item["id"], outcome, datetime.now(UTC))


async def sweep_arrived(pool: asyncpg.Pool) -> int:
    """Decide pending signups whose click or code arrived without deciding them: the event
    was stored while the signup was being recorded, neither transaction seeing the other."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await pending.claim_arrived(conn, _CLAIM_BATCH)
        return await resolve(conn, rows, datetime.now(UTC)) if rows else 0


async def expire_due(pool: asyncpg.Pool, *, now: datetime | None = None) -> int:
    """Give up pending signups whose limit passed: unattributed, ``click_never_arrived`` or
    ``code_never_arrived``. Returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        now = now or datetime.now(UTC)
        rows = await pending.claim_overdue(conn, now, _CLAIM_BATCH)
        for row in rows:
            signup = dict(row)
            signup.update(
                status="unattributed",
                reason=NEVER_ARRIVED[_waiting_for(row)],
                decided_at=now,
                pending_until=None,
            )
            if await pending.set_decided(conn, signup):
                await _finish(conn, signup, row["pending_until"])
        return len(rows)


async def run(pool: asyncpg.Pool, stop: asyncio.Event, *, interval_s: float) -> None:
    """The background loop: work while there is work, else poll every ``interval_s``."""
    while not stop.is_set():
        busy = 0
        try:
            busy += await sweep_arrived(pool)
            busy += await expire_due(pool)
        except Exception as exc:  # the loop must outlive any one bad pass
            log.warning("pending signup sweep failed, retrying: %r", exc)
        if not busy and await sleep_unless(stop, interval_s):
            return
