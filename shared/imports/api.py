"""What the import routes of every service answer alike: the job's progress (202 with its
``Location`` on upload), and its error report as JSON pages or one streamed CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from shared.http.openapi import problem_responses
from shared.http.problems import Problem, not_found
from shared.imports import repository as repo
from shared.imports.models import ImportOut, RowErrorOut, RowErrorPage
from shared.imports.upload import FORMATS
from shared.service import runtime_of

ERRORS_PAGE_MAX = 1000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# The request body of an upload route, for its OpenAPI document (the body is read as a
# stream, so FastAPI does not know it).
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "CSV with a header row, or JSON Lines (one object per line)",
        "content": {media: {"schema": {"type": "string"}} for media in FORMATS},
    }
}
ACCEPTED = {
    202: {
        "model": ImportOut,
        "description": "Received (or, with `Idempotent-Replayed: true`, a retry with the same "
        "Idempotency-Key: the first upload's job, body not read); poll the Location",
    },
}


def import_out(job: asyncpg.Record) -> dict[str, Any]:
    return ImportOut(
        id=job["id"],
        program_id=job["program_id"],
        kind=job["kind"],
        format=job["format"],
        status=job["status"],
        rows_received=job["rows_received"],
        rows_total=job["rows_total"],
        rows_done=job["rows_done"],
        rows_created=job["rows_created"],
        rows_existing=job["rows_existing"],
        rows_failed=job["rows_failed"],
        ignored_columns=list(job["ignored_columns"]),
        failure=job["failure"],
        created_at=job["created_at"],
        received_at=job["received_at"],
        finished_at=job["finished_at"],
    ).model_dump(mode="json")


def accepted(job: asyncpg.Record, *, replayed: bool, base: str = "/v1/imports") -> JSONResponse:
    """202 with the job and where to poll it (``base``: the service's progress path)."""
    headers = {"Location": f"{base}/{job['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(import_out(job), status_code=202, headers=headers)


async def job_of_program(
    pool: asyncpg.Pool, import_id: UUID, program_id: UUID | None
) -> asyncpg.Record:
    """The job, if it belongs to ``program_id`` (None: the admin, any program's)."""
    job = await repo.get_import(pool, import_id)
    if job is None or (program_id is not None and job["program_id"] != program_id):
        raise not_found("import", import_id, "import_id")
    return job


def _cursor(after: str | None) -> tuple[int, int]:
    if not after:
        return 0, 0
    row, _, ident = after.partition(".")
    if not (row.isdigit() and ident.isdigit() and len(row) < 19 and len(ident) < 19):
        raise Problem(422, "invalid-cursor", "Pass `after` as a page's next_after", field="after")
    return int(row), int(ident)


async def errors_page(
    pool: asyncpg.Pool, import_id: UUID, after: str | None, limit: int
) -> dict[str, Any]:
    records = await repo.errors_page(pool, import_id, _cursor(after), min(limit, ERRORS_PAGE_MAX))
    last = records[-1] if len(records) == min(limit, ERRORS_PAGE_MAX) else None
    return RowErrorPage(
        items=[RowErrorOut(row=r["row"], field=r["field"], message=r["message"]) for r in records],
        next_after=f"{last['row']}.{last['id']}" if last else None,
    ).model_dump(mode="json")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # a spreadsheet would run it as a formula
    return "" if value is None else value


def _csv(rows: list[list[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([[_cell(v) for v in r] for r in rows])
    return out.getvalue()


async def _error_lines(pool: asyncpg.Pool, import_id: UUID) -> AsyncIterator[str]:
    yield _csv([["row", "field", "message"]])
    async with pool.acquire() as conn, conn.transaction():
        chunk: list[list[Any]] = []
        async for r in repo.errors_cursor(conn, import_id, prefetch=500):
            chunk.append([r["row"], r["field"], r["message"]])
            if len(chunk) == 500:
                yield _csv(chunk)
                chunk = []
        if chunk:
            yield _csv(chunk)


def errors_csv(pool: asyncpg.Pool, import_id: UUID) -> StreamingResponse:
    return StreamingResponse(
        _error_lines(pool, import_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )


def progress_routes(key: Callable[..., Any], base: str = "/imports") -> APIRouter:
    """The read routes every service's imports have alike, under ``base`` (each service its
    own, so one client can call them all), guarded by ``key``: the auth dependency, giving the
    caller's program (None: the admin key, which sees every import)."""
    router = APIRouter()

    @router.get(base + "/{import_id}", response_model=ImportOut, responses=problem_responses(404))
    async def get_import(
        import_id: UUID, request: Request, program_id: UUID | None = Depends(key)
    ) -> Any:
        """An import's status and progress (the key of the import's program)."""
        pool = runtime_of(request).pool
        return import_out(await job_of_program(pool, import_id, program_id))

    @router.get(
        base + "/{import_id}/errors",
        response_model=RowErrorPage,
        responses={
            **problem_responses(404),
            200: {"content": {"text/csv": {}}, "description": "`?format=csv`: every error"},
        },
    )
    async def import_errors(
        import_id: UUID,
        request: Request,
        program_id: UUID | None = Depends(key),
        after: str | None = Query(default=None, max_length=40, description="A page's next_after"),
        limit: int = Query(default=100, ge=1, le=ERRORS_PAGE_MAX),
        format: str = Query(default="json", pattern="^(json|csv)$"),
    ) -> Any:
        """The rows refused, in row order (a CSV header is row 1): `row`, `field` (null when
        the row as a whole was unreadable) and `message`; `?format=csv` streams them all."""
        pool = runtime_of(request).pool
        await job_of_program(pool, import_id, program_id)
        if format == "csv":
            return errors_csv(pool, import_id)
        return await errors_page(pool, import_id, after, limit)

    return router
