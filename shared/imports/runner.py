"""The background runner of import jobs: one per service process. It claims a queued job (or
one whose runner died: its lease ran out), applies its spooled rows a batch at a time, each
batch in one transaction with the job's progress, so a batch is applied exactly once whoever
runs it, and a restart resumes after the last batch applied."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from shared.imports import repository as repo
from shared.imports.models import Row, RowError

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    created: int = 0
    existing: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len({e.row for e in self.errors})


class ImportFailed(Exception):
    """Raised by an apply function when the job cannot go on (the program was paused): the
    job fails with this message and its remaining rows are dropped."""


# Applies one batch of rows of a job (the job's row is passed), in the runner's transaction.
Apply = Callable[[asyncpg.Connection, asyncpg.Record, list[Row]], Awaitable[BatchResult]]


class ImportRunner:
    def __init__(
        self,
        pool: asyncpg.Pool,
        kinds: dict[str, Apply],
        *,
        batch_rows: int = 1000,
        poll_s: float = 5.0,
        lease_s: float = 60.0,
        stalled_upload_s: float = 600.0,
    ) -> None:
        self.pool = pool
        self.kinds = kinds
        self.batch_rows = batch_rows
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.stalled_upload_s = stalled_upload_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A job was just queued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                if await self.run_once():
                    continue
                await repo.fail_stalled_uploads(self.pool, list(self.kinds), self.stalled_upload_s)
            except Exception:
                log.exception("import runner failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, self._wake), self.poll_s)

    async def run_once(self) -> bool:
        """Claim one job and run it to its end; False when there was none to claim."""
        job = await repo.claim(self.pool, list(self.kinds), self.lease_s)
        if job is None:
            return False
        try:
            while await self._batch(job["id"]):
                pass
        except ImportFailed as exc:
            await _fail(self.pool, job["id"], str(exc))
        except Exception:
            await repo.release_lease(self.pool, job["id"])
            raise
        return True

    async def _batch(self, import_id: UUID) -> bool:
        """Apply the next batch; False once the job is over (completed, or not ours)."""
        async with self.pool.acquire() as conn, conn.transaction():
            job = await repo.lock_running(conn, import_id)
            if job is None:
                return False
            staged = await repo.next_rows(conn, import_id, job["processed_upto"], self.batch_rows)
            if not staged:
                await repo.complete(conn, import_id)
                return False
            names: Sequence[str] = job["columns"]
            rows = [Row(r["row"], dict(zip(names, r["values"], strict=True))) for r in staged]
            result = await self.kinds[job["kind"]](conn, job, rows)
            await repo.insert_errors(conn, import_id, result.errors)
            await repo.record_batch(
                conn,
                import_id,
                rows[-1].number,
                result.created,
                result.existing,
                result.failed,
                self.lease_s,
            )
            return True


async def _fail(pool: asyncpg.Pool, import_id: UUID, failure: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await repo.fail(conn, import_id, failure)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
