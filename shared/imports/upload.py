"""Receiving an upload: the request body, read as a stream, is parsed and validated row by
row and spooled to Postgres a few thousand rows at a time (valid rows to ``import_rows``, the
others straight to the error report). When the last byte is in, the job is queued for the
runner and the caller gets 202 with its progress. Memory stays flat whatever the size."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from shared.http.idempotency import MAX_KEY_LENGTH
from shared.http.problems import Problem
from shared.imports import repository as repo
from shared.imports.models import Columns, InvalidRow, Row, RowError
from shared.imports.reader import MAX_ROW_CHARS, Parser, parser_for, read_rows

# Media types an upload may be sent as, and the format each means.
FORMATS = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
}
SPOOL_ROWS = 5000  # rows per spooling transaction (and the most held in memory)

Validator = Callable[[dict[str, str | None]], dict[str, str | None]]


@dataclass(frozen=True)
class ImportKind:
    """What one kind of import reads: its columns and the check of one row (pure: returns
    the values to keep, or raises ``InvalidRow``)."""

    name: str
    columns: Columns
    validate: Validator


def format_of(content_type: str | None) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in FORMATS:
        raise Problem(
            415,
            "unsupported-media-type",
            f"Send the rows as one of: {', '.join(FORMATS)} (got {media or 'nothing'})",
            field="Content-Type",
            accepted=list(FORMATS),
        )
    return FORMATS[media]


def check_key(key: str | None) -> None:
    if key is not None and (not key or len(key) > MAX_KEY_LENGTH):
        raise Problem(
            400,
            "invalid-idempotency-key",
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters",
            field="Idempotency-Key",
        )


def _in_progress() -> Problem:
    return Problem(
        409,
        "import-in-progress",
        "An upload with this Idempotency-Key is still being received",
        field="Idempotency-Key",
    )


async def replay(
    pool: asyncpg.Pool, program_id: UUID, kind: str, key: str | None
) -> asyncpg.Record | None:
    """The import an earlier upload with this key started, if it got past receiving (the
    retry changes nothing and its body is not read). A failed upload frees its key."""
    if key is None:
        return None
    check_key(key)
    job = await repo.import_by_key(pool, program_id, kind, key)
    if job is None:
        return None
    if job["status"] == "receiving":
        raise _in_progress()
    if job["status"] == "failed" and job["rows_total"] is None:
        await repo.release_key(pool, job["id"])
        return None
    return job


class _Spool:
    """The rows read since the last flush, and the job they go to (created with the first)."""

    def __init__(self, pool: asyncpg.Pool, kind: ImportKind, program_id: UUID) -> None:
        self.pool, self.kind, self.program_id = pool, kind, program_id
        self.job_id: UUID | None = None
        self.received = 0
        self.rows: list[tuple[int, list[str | None]]] = []
        self.errors: list[RowError] = []
        self.failed = 0

    async def start(self, fmt: str, key: str | None, parser: Parser) -> None:
        job_id = uuid.uuid4()
        created = await repo.create_import(
            self.pool,
            {
                "id": job_id,
                "program_id": self.program_id,
                "kind": self.kind.name,
                "format": fmt,
                "idempotency_key": key,
                "columns": self.kind.columns.names,
                "ignored_columns": parser.ignored_columns,
            },
        )
        if not created:
            raise _in_progress()
        self.job_id = job_id

    def add(self, item: Row | RowError) -> None:
        self.received += 1
        if isinstance(item, RowError):
            self.errors.append(item)
            self.failed += 1
            return
        try:
            clean = self.kind.validate(item.values)
        except InvalidRow as exc:
            self.errors.extend(RowError(item.number, f, m) for f, m in exc.problems)
            self.failed += 1
            return
        self.rows.append((item.number, [clean[c] for c in self.kind.columns.names]))

    @property
    def full(self) -> bool:
        return len(self.rows) + self.failed >= SPOOL_ROWS

    async def flush(self) -> None:
        assert self.job_id is not None
        async with self.pool.acquire() as conn, conn.transaction():
            await repo.spool(conn, self.job_id, self.rows, self.errors, self.failed, self.received)
        self.rows, self.errors, self.failed = [], [], 0


async def receive(
    pool: asyncpg.Pool,
    kind: ImportKind,
    program_id: UUID,
    fmt: str,
    chunks: AsyncIterator[bytes],
    key: str | None,
    max_row_chars: int = MAX_ROW_CHARS,
) -> asyncpg.Record:
    """Spool an upload and queue its job; the queued job. An upload refused on the way (a
    missing column, a row too large, an empty file) or cut off leaves a failed job, if it
    had one, and frees its key."""
    parser = parser_for(fmt, kind.columns, max_row_chars)
    spool = _Spool(pool, kind, program_id)
    try:
        async for items in read_rows(chunks, parser):
            if spool.job_id is None:
                await spool.start(fmt, key, parser)
            for item in items:
                spool.add(item)
            if spool.full:
                await spool.flush()
        if spool.received == 0:
            raise Problem(422, "empty-upload", "The upload has no data rows", field="body")
        await spool.flush()
        return await repo.finish_upload(pool, spool.job_id, spool.received)  # type: ignore[arg-type]
    except Exception as exc:
        if spool.job_id is not None:
            await _abandon(pool, spool.job_id, exc)
        raise


async def _abandon(pool: asyncpg.Pool, job_id: UUID, exc: Exception) -> None:
    failure = exc.detail if isinstance(exc, Problem) else "the upload was interrupted"
    async with pool.acquire() as conn, conn.transaction():
        await repo.release_key(conn, job_id)
        await repo.fail(conn, job_id, failure)
