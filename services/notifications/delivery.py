"""Delivering recorded messages (the ``recording`` module writes them): the sender claims due
messages (row locks with SKIP LOCKED, so replicas share the work and never take the same row),
makes the external call (SMTP, webhook) outside any transaction, and records the outcome. A
claim is a lease: a process that dies mid-call leaves the row to be claimed again when the
lease runs out (see README.md, "Delivery semantics")."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from services.notifications import webhooks
from services.notifications.email import SendError, SmtpPool, build_message
from services.notifications.metrics import ENDPOINTS_DISABLED, FAILED, RETRIED, SENT
from services.notifications.policy import retry_delay, should_disable
from services.notifications.repository import deliveries, endpoints
from services.notifications.settings import NotificationsSettings
from shared.aio import sleep_unless
from shared.http.outbound import outbound_client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str | None = None
    permanent: bool = False


@dataclass(frozen=True)
class Attempt:
    row: dict[str, Any]
    outcome: Outcome
    started: datetime
    duration_ms: float


class Sender:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: NotificationsSettings,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.smtp = SmtpPool(settings) if settings.smtp_host else None
        self.http = http or outbound_client(
            timeout=settings.notify_webhook_timeout_s,
            allow_private=settings.outbound_allow_private_networks,
        )

    def channels(self) -> list[str]:
        """Webhooks always; email once an SMTP server is configured (until then emails wait)."""
        return ["webhook"] + (["email"] if self.smtp is not None else [])

    async def run(self, stop: asyncio.Event) -> None:
        """One loop per channel, so a slow SMTP server never holds webhooks back (and the
        other way round)."""
        try:
            await asyncio.gather(*(self._loop(channel, stop) for channel in self.channels()))
        finally:
            await self.close()

    async def _loop(self, channel: str, stop: asyncio.Event) -> None:
        """Keep up to ``batch size`` messages in flight and top up when half are done; a slow
        recipient holds one slot, not the batch, so it never blocks the others. Outcomes go
        to a recorder task that writes whatever has completed in one transaction."""
        limit = self.settings.notify_sender_batch_size
        inflight: set[asyncio.Task[Attempt]] = set()
        outcomes: asyncio.Queue[Attempt] = asyncio.Queue()
        recorder = asyncio.create_task(self._recorder(outcomes))
        try:
            while not stop.is_set():
                claimed = 0
                if len(inflight) <= limit // 2:
                    try:
                        claimed = await self._start(channel, limit - len(inflight), inflight)
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                        log.warning("sender: database unavailable (%s)", type(exc).__name__)
                if not inflight:
                    if not claimed:
                        await sleep_unless(stop, self.settings.notify_sender_poll_interval_s)
                    continue
                done, _ = await asyncio.wait(
                    inflight,
                    timeout=self.settings.notify_sender_poll_interval_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                inflight -= done
                for task in done:
                    outcomes.put_nowait(task.result())
        finally:
            if inflight:
                done, _ = await asyncio.wait(
                    inflight, timeout=self.settings.notify_webhook_timeout_s + 1
                )
                for task in done:
                    outcomes.put_nowait(task.result())
            await outcomes.join()
            recorder.cancel()

    async def _recorder(self, outcomes: asyncio.Queue[Attempt]) -> None:
        while True:
            batch = [await outcomes.get()]
            while not outcomes.empty() and len(batch) < 1000:
                batch.append(outcomes.get_nowait())
            try:
                await self.record(batch)
            except Exception as exc:  # the database away, or a bug: never stop recording
                # Not recorded: the lease runs out and the rows are tried again (README).
                log.warning("sender: could not record outcomes (%s)", type(exc).__name__)
            finally:
                for _ in batch:
                    outcomes.task_done()

    async def _start(self, channel: str, room: int, inflight: set[asyncio.Task[Attempt]]) -> int:
        rows, signing = await self.claim(channel, room)
        for row in rows:
            inflight.add(asyncio.create_task(self.deliver(row, signing)))
        return len(rows)

    async def claim(
        self, channel: str, limit: int
    ) -> tuple[list[dict[str, Any]], dict[Any, asyncpg.Record]]:
        """Up to ``limit`` due messages of ``channel``, leased to this sender, and the URL and
        secrets of their endpoints."""
        rows = await deliveries.claim(
            self.pool, channel, limit, self.settings.notify_sender_lease_s
        )
        signing = await endpoints.signing(
            self.pool, {r["endpoint_id"] for r in rows if r["endpoint_id"]}
        )
        return rows, signing

    async def close(self) -> None:
        if self.smtp is not None:
            await self.smtp.close()
        await self.http.aclose()

    async def deliver(self, row: dict[str, Any], signing: dict[Any, asyncpg.Record]) -> Attempt:
        """One external call; never raises (an error is the attempt's outcome)."""
        started = datetime.now(UTC)
        clock = time.perf_counter()
        try:
            if row["channel"] == "email":
                outcome = await self._email(row)
            else:
                outcome = await self._webhook(row, signing.get(row["endpoint_id"]))
        except Exception as exc:  # a bug must cost one attempt, not the loop
            log.exception("sender: unexpected error")
            outcome = Outcome(False, f"internal error: {type(exc).__name__}")
        return Attempt(row, outcome, started, (time.perf_counter() - clock) * 1000)

    async def _email(self, row: dict[str, Any]) -> Outcome:
        assert self.smtp is not None
        if not row["address"] or "text" not in row["payload"]:
            return Outcome(False, "no address or content (erased)", permanent=True)
        message = build_message(
            delivery_id=row["id"],
            sender=self.settings.notify_mail_from,
            to=row["address"],
            payload=row["payload"],
        )
        try:
            await self.smtp.send(message)
        except SendError as exc:
            return Outcome(False, str(exc), permanent=exc.permanent)
        return Outcome(True)

    async def _webhook(self, row: dict[str, Any], endpoint: asyncpg.Record | None) -> Outcome:
        if endpoint is None:
            return Outcome(False, "endpoint deleted", permanent=True)
        if "body" not in row["payload"]:
            return Outcome(False, "no content (erased)", permanent=True)
        secrets = [endpoint["secret"]]
        expires = endpoint["previous_expires_at"]
        if endpoint["previous_secret"] and expires and expires > datetime.now(UTC):
            secrets.append(endpoint["previous_secret"])
        try:
            await webhooks.post(
                self.http,
                endpoint["url"],
                secrets=secrets,
                message_id=webhooks.webhook_id(row["id"]),
                body=row["payload"]["body"],
                allow_private=self.settings.outbound_allow_private_networks,
            )
        except webhooks.WebhookError as exc:
            return Outcome(False, str(exc))
        return Outcome(True)

    async def record(self, attempts: list[Attempt]) -> None:
        """The attempts and the outcome of each, in one transaction; an outcome counts only
        while the claim is still ours (same attempt count, still pending)."""
        if not attempts:
            return
        sent = [a for a in attempts if a.outcome.ok]
        async with self.pool.acquire() as conn, conn.transaction():
            await deliveries.add_attempts(
                conn,
                [
                    deliveries.AttemptRow(
                        delivery_id=a.row["id"],
                        attempt=a.row["attempts"],
                        ok=a.outcome.ok,
                        error=a.outcome.error,
                        started_at=a.started,
                        duration_ms=a.duration_ms,
                    )
                    for a in attempts
                ],
            )
            if sent:
                await deliveries.mark_sent(conn, [(a.row["id"], a.row["attempts"]) for a in sent])
            for attempt in attempts:
                if attempt.outcome.ok:
                    SENT.labels(attempt.row["channel"]).inc()
                else:
                    await self._record_failure(conn, attempt)
                if attempt.row["channel"] == "webhook" and attempt.row["endpoint_id"]:
                    await self._endpoint_outcome(
                        conn, attempt.row["endpoint_id"], attempt.outcome.ok
                    )

    async def _record_failure(self, conn: asyncpg.Connection, attempt: Attempt) -> None:
        row, outcome = attempt.row, attempt.outcome
        channel = row["channel"]
        delay = (
            None
            if outcome.permanent
            else retry_delay(row["attempts"], self.settings.notify_retry_schedule_s)
        )
        if delay is not None:
            await deliveries.retry_later(conn, row["id"], row["attempts"], outcome.error, delay)
            RETRIED.labels(channel).inc()
        else:
            await deliveries.mark_failed(conn, row["id"], row["attempts"], outcome.error)
            FAILED.labels(channel).inc()

    async def _endpoint_outcome(self, conn: asyncpg.Connection, endpoint_id: Any, ok: bool) -> None:
        if ok:
            await endpoints.succeeded(conn, endpoint_id)
            return
        failures = await endpoints.failed(conn, endpoint_id)
        if failures is not None and should_disable(
            failures, self.settings.notify_webhook_disable_after
        ):
            disabled = await endpoints.disable_for_failing(
                conn, endpoint_id, f"{failures} consecutive failed deliveries"
            )
            if disabled:
                ENDPOINTS_DISABLED.inc()
                log.warning("webhook endpoint %s disabled after %d failures", endpoint_id, failures)
