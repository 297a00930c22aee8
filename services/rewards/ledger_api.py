"""Rewards HTTP API on the ledger: statements (JSON pages and CSV), manual adjustments, and
the return on a program's rewards."""

from __future__ import annotations

import hmac
import re
from datetime import date
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from services.rewards import adjustments, ledger_reports
from services.rewards.ledger_reports import Filters
from services.rewards.models import (
    AdjustmentIn,
    AdjustmentOut,
    ParticipantStatementOut,
    ProgramStatementOut,
    RoiOut,
)
from shared.http.auth import bearer_token, require_program_access
from shared.http.idempotency import MAX_KEY_LENGTH, run_idempotent
from shared.http.openapi import problem_responses
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["ledger"])

UNIT_PATTERN = r"^[A-Z][A-Z0-9_]{1,15}$"  # a unit code, as the reward policy takes it

PARTICIPANT = "/programs/{program_id}/participants/{participant_id}"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
CSV_RESPONSE = {
    "description": "The statement's lines as CSV, with a header row",
    "content": {"text/csv": {"schema": {"type": "string"}}},
}


def _iso_day(value: Any) -> Any:
    # Only YYYY-MM-DD, as the document's ``format: date`` says (pydantic alone would also
    # read a number as a day since 1970).
    if not (isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value)):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]


def filters(
    unit: str | None = Query(default=None, pattern=UNIT_PATTERN, description="One unit only"),
    since: Day | None = Query(default=None, description="Entries from this UTC day on"),
    until: Day | None = Query(default=None, description="Entries up to this UTC day included"),
) -> Filters:
    return Filters(unit=unit, since=since, until=until)


Cursor = Query(
    default=None, max_length=2000, description="`next_cursor` of the previous page (opaque)"
)
Limit = Query(default=100, ge=1, le=1000)


@router.get(
    f"{PARTICIPANT}/statement",
    response_model=ParticipantStatementOut,
    responses=problem_responses(404),
    dependencies=[Depends(require_program_access)],
)
async def participant_statement(
    program_id: UUID,
    participant_id: UUID,
    request: Request,
    cursor: str | None = Cursor,
    limit: int = Limit,
    where: Filters = Depends(filters),
) -> Any:
    """The postings of the participant's accounts (as referrer and as referee), oldest first,
    each with the account's running balance; totals equal the participant rewards endpoint."""
    pool = runtime_of(request).pool
    return await ledger_reports.participant_page(
        pool, program_id, participant_id, cursor, limit, where
    )


@router.get(
    f"{PARTICIPANT}/statement.csv",
    response_class=StreamingResponse,
    responses={200: CSV_RESPONSE, **problem_responses(404)},
    dependencies=[Depends(require_program_access)],
)
async def participant_statement_csv(
    program_id: UUID, participant_id: UUID, request: Request, where: Filters = Depends(filters)
) -> StreamingResponse:
    """The whole participant statement as CSV (streamed), with the same filters."""
    pool = runtime_of(request).pool
    statement = await ledger_reports.of_participant(pool, program_id, participant_id)
    return _csv(ledger_reports.csv_rows(pool, statement, where), f"statement-{participant_id}")


@router.get(
    "/programs/{program_id}/statement",
    response_model=ProgramStatementOut,
    dependencies=[Depends(require_program_access)],
)
async def program_statement(
    program_id: UUID,
    request: Request,
    cursor: str | None = Cursor,
    limit: int = Limit,
    where: Filters = Depends(filters),
) -> Any:
    """Every posting of the program, oldest first, with running balances; totals: its reward
    cost, what it still owes (reward-totals' ``liability``) and what was paid out."""
    pool = runtime_of(request).pool
    return await ledger_reports.program_page(pool, program_id, cursor, limit, where)


@router.get(
    "/programs/{program_id}/statement.csv",
    response_class=StreamingResponse,
    responses={200: CSV_RESPONSE},
    dependencies=[Depends(require_program_access)],
)
async def program_statement_csv(
    program_id: UUID, request: Request, where: Filters = Depends(filters)
) -> StreamingResponse:
    """The whole program statement as CSV (streamed), with the same filters."""
    statement = ledger_reports.of_program(program_id)
    rows = ledger_reports.csv_rows(runtime_of(request).pool, statement, where)
    return _csv(rows, f"statement-{program_id}")


def _csv(rows: Any, name: str) -> StreamingResponse:
    return StreamingResponse(
        rows,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.post(
    f"{PARTICIPANT}/adjustments",
    status_code=201,
    response_model=AdjustmentOut,
    responses={
        200: {"model": AdjustmentOut, "description": "The adjustment sent before (reference)"},
        **problem_responses(404, 409),
    },
    dependencies=[Depends(require_program_access)],
)
async def adjust(
    program_id: UUID,
    participant_id: UUID,
    body: AdjustmentIn,
    request: Request,
    idempotency_key: str | None = Header(
        default=None, alias="Idempotency-Key", min_length=1, max_length=MAX_KEY_LENGTH
    ),
) -> Any:
    """A goodwill grant or a correction of the participant's balance, with a reason; the
    acting key is recorded on the ledger entry."""
    pool = runtime_of(request).pool
    token, admin = bearer_token(request), _is_admin(request)

    async def effect(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        actor = await adjustments.acting_key(conn, token, admin=admin)
        status, out = await adjustments.adjust(conn, program_id, participant_id, body, actor)
        return status, out.model_dump(mode="json")

    return await run_idempotent(
        pool,
        scope=f"rewards:adjust:{program_id}:{participant_id}",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=effect,
    )


@router.get(
    "/programs/{program_id}/roi",
    response_model=RoiOut,
    dependencies=[Depends(require_program_access)],
)
async def program_roi(program_id: UUID, request: Request) -> Any:
    """Revenue of the referred conversions against their reward cost, per experiment variant
    and for the program; a return only where the currency is also the reward unit."""
    return await ledger_reports.roi(runtime_of(request).pool, program_id)


def _is_admin(request: Request) -> bool:
    admin = request.app.state.runtime.settings.admin_api_key
    token = bearer_token(request).encode()
    return bool(admin) and hmac.compare_digest(token, admin.get_secret_value().encode())
