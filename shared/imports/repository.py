"""Queries of import jobs, their spooled rows and their errors: the tables ``imports``,
``import_rows`` and ``import_errors``, which every service that takes imports creates alike in
its own migration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from shared.imports.models import RowError

Conn = asyncpg.Connection | asyncpg.Pool


async def import_by_key(conn: Conn, program_id: UUID, kind: str, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM imports WHERE program_id = $1 AND kind = $2 AND idempotency_key = $3",
        program_id,
        kind,
        key,
    )


async def release_key(conn: Conn, import_id: UUID) -> None:
    """A failed upload's key may be used again by a retry."""
    await conn.execute("UPDATE imports SET idempotency_key = NULL WHERE id = $1", import_id)


async def create_import(conn: Conn, values: dict[str, Any]) -> bool:
    """False when another upload has just claimed the same idempotency key."""
    created = await conn.fetchval(
        "INSERT INTO imports (id, program_id, kind, format, idempotency_key, columns, "
        "ignored_columns, status) VALUES ($1, $2, $3, $4, $5, $6, $7, 'receiving') "
        "ON CONFLICT DO NOTHING RETURNING true",
        values["id"],
        values["program_id"],
        values["kind"],
        values["format"],
        values["idempotency_key"],
        list(values["columns"]),
        list(values["ignored_columns"]),
    )
    return bool(created)


async def get_import(conn: Conn, import_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM imports WHERE id = $1", import_id)


async def spool(
    conn: asyncpg.Connection,
    import_id: UUID,
    rows: Sequence[tuple[int, list[str | None]]],
    errors: Sequence[RowError],
    failed_rows: int,
    received: int,
) -> None:
    """One piece of the upload, in the caller's transaction: its valid rows staged (COPY),
    its invalid ones reported and counted done, the rows received so far."""
    if rows:
        await conn.copy_records_to_table(
            "import_rows",
            records=[(import_id, n, values) for n, values in rows],
            columns=("import_id", "row", "values"),
        )
    await insert_errors(conn, import_id, errors)
    await conn.execute(
        "UPDATE imports SET rows_received = $2, rows_failed = rows_failed + $3, "
        "rows_done = rows_done + $3, updated_at = now() WHERE id = $1",
        import_id,
        received,
        failed_rows,
    )


async def insert_errors(
    conn: asyncpg.Connection, import_id: UUID, errors: Sequence[RowError]
) -> None:
    if errors:
        await conn.copy_records_to_table(
            "import_errors",
            records=[(import_id, e.row, e.field, e.message) for e in errors],
            columns=("import_id", "row", "field", "message"),
        )


async def finish_upload(conn: Conn, import_id: UUID, total: int) -> asyncpg.Record:
    """The whole upload is spooled: the job is queued for the runner."""
    return await conn.fetchrow(
        "UPDATE imports SET status = 'queued', rows_total = $2, rows_received = $2, "
        "received_at = now(), updated_at = now() WHERE id = $1 RETURNING *",
        import_id,
        total,
    )


async def fail(conn: Conn, import_id: UUID, failure: str) -> None:
    """Stop a job for good; its rows not yet processed are dropped."""
    await conn.execute(
        "UPDATE imports SET status = 'failed', failure = $2, finished_at = now(), "
        "lease_until = NULL, updated_at = now() WHERE id = $1",
        import_id,
        failure,
    )
    await conn.execute("DELETE FROM import_rows WHERE import_id = $1", import_id)


async def fail_stalled_uploads(conn: Conn, kinds: Sequence[str], idle_s: float) -> None:
    """Uploads that stopped arriving without their request ending cleanly (a process killed
    while receiving): failed, their key freed for a retry."""
    await conn.execute(
        "WITH stalled AS (UPDATE imports SET status = 'failed', idempotency_key = NULL, "
        "failure = 'the upload stopped arriving', finished_at = now(), updated_at = now() "
        "WHERE kind = ANY($1::text[]) AND status = 'receiving' "
        "AND updated_at < now() - make_interval(secs => $2) RETURNING id) "
        "DELETE FROM import_rows WHERE import_id IN (SELECT id FROM stalled)",
        list(kinds),
        idle_s,
    )


async def claim(conn: Conn, kinds: Sequence[str], lease_s: float) -> asyncpg.Record | None:
    """A queued job, or a running one whose runner stopped renewing its lease (a replica that
    died): this runner's for ``lease_s``. Replicas skip each other's claims."""
    return await conn.fetchrow(
        "UPDATE imports SET status = 'running', lease_until = now() + make_interval(secs => $2), "
        "updated_at = now() WHERE id = ("
        "  SELECT id FROM imports WHERE kind = ANY($1::text[]) AND (status = 'queued' OR "
        "  (status = 'running' AND lease_until < now())) "
        "  ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        ") RETURNING *",
        list(kinds),
        lease_s,
    )


async def lock_running(conn: asyncpg.Connection, import_id: UUID) -> asyncpg.Record | None:
    """The job, locked for one batch (two runners never apply the same rows), if running."""
    return await conn.fetchrow(
        "SELECT * FROM imports WHERE id = $1 AND status = 'running' FOR UPDATE", import_id
    )


async def next_rows(
    conn: asyncpg.Connection, import_id: UUID, after: int, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        'SELECT row, "values" FROM import_rows WHERE import_id = $1 AND row > $2 '
        "ORDER BY row LIMIT $3",
        import_id,
        after,
        limit,
    )


async def record_batch(
    conn: asyncpg.Connection,
    import_id: UUID,
    last_row: int,
    created: int,
    existing: int,
    failed: int,
    lease_s: float,
) -> None:
    await conn.execute(
        "DELETE FROM import_rows WHERE import_id = $1 AND row <= $2", import_id, last_row
    )
    await conn.execute(
        "UPDATE imports SET processed_upto = $2, rows_created = rows_created + $3, "
        "rows_existing = rows_existing + $4, rows_failed = rows_failed + $5, "
        "rows_done = rows_done + $3 + $4 + $5, "
        "lease_until = now() + make_interval(secs => $6), updated_at = now() WHERE id = $1",
        import_id,
        last_row,
        created,
        existing,
        failed,
        lease_s,
    )


async def complete(conn: Conn, import_id: UUID) -> None:
    await conn.execute(
        "UPDATE imports SET status = 'completed', finished_at = now(), lease_until = NULL, "
        "updated_at = now() WHERE id = $1 AND status = 'running'",
        import_id,
    )


async def release_lease(conn: Conn, import_id: UUID) -> None:
    """Let any runner retry the job at once (this one hit an error)."""
    await conn.execute(
        "UPDATE imports SET lease_until = now() WHERE id = $1 AND status = 'running'", import_id
    )


async def errors_page(
    conn: Conn, import_id: UUID, after: tuple[int, int], limit: int
) -> list[asyncpg.Record]:
    """Errors in row order (a row's in the order found), after the (row, id) ``after``."""
    return await conn.fetch(
        "SELECT id, row, field, message FROM import_errors WHERE import_id = $1 "
        "AND (row, id) > ($2, $3) ORDER BY row, id LIMIT $4",
        import_id,
        after[0],
        after[1],
        limit,
    )


async def errors_cursor(
    conn: asyncpg.Connection, import_id: UUID, prefetch: int
) -> AsyncIterator[asyncpg.Record]:
    """Every error of a job in row order (a server-side cursor: the caller holds a transaction)."""
    async for record in conn.cursor(
        "SELECT row, field, message FROM import_errors WHERE import_id = $1 ORDER BY row, id",
        import_id,
        prefetch=prefetch,
    ):
        yield record
