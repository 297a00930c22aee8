"""Due work, claimed from the database so any number of replicas can run it: holds that
ended (pending → available) and webhook fulfilment calls (first tries and retries with
exponential backoff). Rows are claimed with ``FOR UPDATE SKIP LOCKED`` and stay locked
until their transaction commits, so two replicas never handle the same reward."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
import httpx

from services.rewards import lifecycle
from services.rewards.metrics import WEBHOOK_ATTEMPTS
from shared.aio import sleep_unless
from shared.http.outbound import TargetRefused, check_target, outbound_client, sign

log = logging.getLogger(__name__)

_CLAIM_BATCH = 100
_WEBHOOK_BATCH = 20
_WEBHOOK_TIMEOUT_S = 5.0


async def release_due(pool: asyncpg.Pool, *, now: datetime | None = None) -> int:
    """Make every reward whose hold ended available (and fulfil it). Returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        now = now or lifecycle.now_utc()
        rows = await conn.fetch(
            "SELECT id FROM rewards WHERE status = 'pending' AND available_at <= $1 "
            "ORDER BY available_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            _CLAIM_BATCH,
        )
        for row in rows:
            await lifecycle.release(conn, row["id"], now=now)
        return len(rows)


def webhook_body(reward: asyncpg.Record, now: datetime) -> str:
    """The Standard Webhooks payload: ``type``, ``timestamp`` and ``data``."""
    return json.dumps(
        {
            "type": "reward.available",
            "timestamp": now.isoformat(),
            "data": {
                "reward_id": str(reward["id"]),
                "program_id": str(reward["program_id"]),
                "program_version": reward["program_version"],
                "variant": reward["variant"],
                "conversion_id": str(reward["conversion_id"]),
                "referrer_id": str(reward["referrer_id"]),
                "rule": reward["rule"],
                "side": reward["side"],
                "recipient": reward["recipient"],
                "amount": reward["amount"],
                "unit": reward["unit"],
                "perk": reward["perk"],
            },
        },
        separators=(",", ":"),
    )


async def _call(
    http: httpx.AsyncClient,
    url: str,
    secret: str,
    reward: asyncpg.Record,
    now: datetime,
    allow_private: bool,
) -> str | None:
    """One signed call; None when the company's endpoint accepted it, else why not."""
    try:
        await check_target(url, allow_private=allow_private)
    except TargetRefused as exc:
        return f"target refused: {exc}"
    signed = sign(secret, str(reward["id"]), now, webhook_body(reward, now))
    try:
        response = await http.post(url, content=signed.body, headers=signed.headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


async def deliver_due_webhooks(
    pool: asyncpg.Pool, http: httpx.AsyncClient, *, allow_private: bool
) -> int:
    """Call the company's endpoint for due rewards; 2xx issues, else retry with backoff
    until ``max_attempts``, then the reward fails and ``reward.failed`` is published."""
    async with pool.acquire() as conn, conn.transaction():
        now = lifecycle.now_utc()
        ids = await conn.fetch(
            "SELECT id FROM rewards WHERE status = 'available' AND fulfilment = 'webhook' "
            "AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 "
            "FOR UPDATE SKIP LOCKED",
            now,
            _WEBHOOK_BATCH,
        )
        if not ids:
            return 0
        work: list[tuple[asyncpg.Record, int, float, str | None, str | None]] = []
        for row in ids:
            reward = await lifecycle.load(conn, row["id"])
            assert reward is not None
            policy = await lifecycle.policy_for(conn, reward)
            secret = await conn.fetchval(
                "SELECT webhook_secret FROM program_secrets WHERE program_id = $1",
                reward["program_id"],
            )
            work.append(
                (
                    reward,
                    policy.fulfilment.max_attempts,
                    policy.fulfilment.backoff_seconds,
                    policy.fulfilment.webhook_url,
                    secret,
                )
            )

        async def attempt(
            item: tuple[asyncpg.Record, int, float, str | None, str | None],
        ) -> str | None:
            reward, _, _, url, secret = item
            if not url or not secret:
                return "no webhook endpoint configured"
            return await _call(http, url, secret, reward, now, allow_private)

        # The calls run concurrently; the rows stay locked by this transaction meanwhile.
        outcomes = await asyncio.gather(*(attempt(item) for item in work))
        for (reward, max_attempts, backoff, _, _), error in zip(work, outcomes, strict=True):
            await _settle(conn, reward, error, max_attempts, backoff, now)
        return len(work)


async def _settle(
    conn: asyncpg.Connection,
    reward: asyncpg.Record,
    error: str | None,
    max_attempts: int,
    backoff: float,
    now: datetime,
) -> None:
    attempts = reward["attempts"] + 1
    if error is None:
        WEBHOOK_ATTEMPTS.labels("delivered").inc()
        await conn.execute("UPDATE rewards SET attempts = $2 WHERE id = $1", reward["id"], attempts)
        await lifecycle.payout(conn, reward, "webhook")
        await lifecycle.mark_issued(conn, reward, now=now)
        return
    log.info("webhook for reward %s failed (attempt %d): %s", reward["id"], attempts, error)
    if attempts >= max_attempts:
        WEBHOOK_ATTEMPTS.labels("gave_up").inc()
        await conn.execute("UPDATE rewards SET attempts = $2 WHERE id = $1", reward["id"], attempts)
        await lifecycle.fail(conn, reward, f"webhook: {error}", now=now)
        return
    WEBHOOK_ATTEMPTS.labels("retry").inc()
    await conn.execute(
        "UPDATE rewards SET attempts = $2, next_attempt_at = $3, failure_reason = $4 WHERE id = $1",
        reward["id"],
        attempts,
        now + timedelta(seconds=backoff * 2 ** (attempts - 1)),
        error,
    )


async def run(
    pool: asyncpg.Pool, stop: asyncio.Event, *, interval_s: float, allow_private: bool
) -> None:
    """The background loop: work while there is work, else poll every ``interval_s``."""
    async with outbound_client(timeout=_WEBHOOK_TIMEOUT_S, allow_private=allow_private) as http:
        while not stop.is_set():
            busy = 0
            try:
                busy += await release_due(pool)
                busy += await deliver_due_webhooks(pool, http, allow_private=allow_private)
            except Exception as exc:  # the loop must outlive any one bad pass
                log.warning("reward scheduler pass failed, retrying: %r", exc)
            if not busy and await sleep_unless(stop, interval_s):
                return


async def approve(conn: asyncpg.Connection, reward_id: UUID) -> bool:
    """An admin ends the hold now."""
    return await lifecycle.release(conn, reward_id, now=lifecycle.now_utc())
