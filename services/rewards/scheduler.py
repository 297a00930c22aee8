"""Due work, claimed from the database so any number of replicas can run it: holds that
ended (pending → available) and webhook fulfilment calls (first tries and retries with
exponential backoff). Rows are claimed with row locks that other replicas skip, held
until their transaction commits, so two replicas never handle the same reward."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import asyncpg
import httpx

from services.rewards import lifecycle
from services.rewards import repository as repo
from shared.aio import sleep_unless
from shared.http.outbound import TargetRefused, check_target, outbound_client, sign

log = logging.getLogger(__name__)

_CLAIM_BATCH = 100
_WEBHOOK_BATCH = 20
_WEBHOOK_TIMEOUT_S = 5.0


async def release_due(pool: asyncpg.Pool, *, now: datetime | None = None) -> int:
    """Make every reward whose hold ended available (and fulfil it). Returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        now = now or datetime.now(UTC)
        ids = await repo.rewards.claim_due_holds(conn, now, _CLAIM_BATCH)
        for reward_id in ids:
            await lifecycle.release(conn, reward_id, now=now)
        return len(ids)


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


async def _call_webhook(
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
        now = datetime.now(UTC)
        ids = await repo.rewards.claim_due_webhooks(conn, now, _WEBHOOK_BATCH)
        if not ids:
            return 0
        work: list[tuple[asyncpg.Record, int, float, str | None, str | None]] = []
        for reward_id in ids:
            reward = await repo.rewards.load_for_update(conn, reward_id)
            assert reward is not None
            policy = await repo.programs.policy_of_reward(conn, reward)
            secret = await repo.programs.webhook_secret(conn, reward["program_id"])
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
            return await _call_webhook(http, url, secret, reward, now, allow_private)

        # The calls run concurrently; the rows stay locked by this transaction meanwhile.
        outcomes = await asyncio.gather(*(attempt(item) for item in work))
        for (reward, max_attempts, backoff, _, _), error in zip(work, outcomes, strict=True):
            await lifecycle.settle_webhook_call(
                conn, reward, error, max_attempts=max_attempts, backoff_s=backoff, now=now
            )
        return len(work)


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
