"""JSON routes of the analytics: the public scoreboard (its token is the secret), and per
program (admin key or the program's key) the leaderboard, analytics, experiments, NPS and
the CSV exports."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from services.links.analytics import nps, queries
from services.links.analytics.models import (
    ExperimentReport,
    LeaderboardRow,
    NpsAnswer,
    NpsRecorded,
    NpsReport,
    ProgramAnalytics,
    Scoreboard,
)
from services.links.api import forget_code
from shared.http.auth import require_program_access
from shared.http.idempotency import run_idempotent
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["analytics"])

DEFAULT_DAYS = 30
MAX_DAYS = 731
# Days outside these years are refused rather than overflowing date arithmetic.
EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)


def date_range(since: date | None, until: date | None) -> tuple[date, date]:
    """Whole UTC days; by default the last 30 days up to today."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise Problem(
                422, "invalid-range", f"{name} must be between {EARLIEST} and {LATEST}", field=name
            )
    until = until or datetime.now(UTC).date()
    since = since or max(EARLIEST, until - timedelta(days=DEFAULT_DAYS - 1))
    if since > until:
        raise Problem(422, "invalid-range", "since must not be after until", field="since")
    if (until - since).days >= MAX_DAYS:
        raise Problem(
            422, "range-too-long", f"A range covers at most {MAX_DAYS} days", field="since"
        )
    return since, until


async def _program_exists(pool: asyncpg.Pool, program_id: UUID) -> None:
    if await pool.fetchval("SELECT true FROM programs WHERE id = $1", program_id) is None:
        raise Problem(404, "program-not-found", f"No program {program_id}", field="program_id")


# Public by design (the token is the key); listed as such in tests/unit/test_api_auth.py.
@router.get("/scoreboards/{token}", response_model=Scoreboard, tags=["public"])
async def get_scoreboard(token: str, request: Request) -> Any:
    """A participant's scoreboard (public: the unguessable token in their scoreboard URL is
    the key)."""
    rt = runtime_of(request)
    board = await queries.scoreboard(
        rt.pool,
        token,
        base_url=rt.settings.public_base_url,  # type: ignore[attr-defined]
    )
    if board is None:
        raise Problem(404, "scoreboard-not-found", "No such scoreboard", field="token")
    return board


@router.get(
    "/programs/{program_id}/leaderboard",
    response_model=list[LeaderboardRow],
    dependencies=[Depends(require_program_access)],
)
async def get_leaderboard(
    program_id: UUID, request: Request, limit: int = Query(default=10, ge=1, le=100)
) -> Any:
    rt = runtime_of(request)
    await _program_exists(rt.pool, program_id)
    return await queries.leaderboard(rt.pool, program_id, limit=limit)


@router.get(
    "/programs/{program_id}/analytics",
    response_model=ProgramAnalytics,
    dependencies=[Depends(require_program_access)],
)
async def get_analytics(
    program_id: UUID,
    request: Request,
    since: date | None = Query(default=None, description="First UTC day (default: 29 days ago)"),
    until: date | None = Query(default=None, description="Last UTC day (default: today)"),
) -> Any:
    rt = runtime_of(request)
    since, until = date_range(since, until)
    await _program_exists(rt.pool, program_id)
    async with rt.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        # One snapshot, so that the funnel and the daily series agree.
        return await queries.program_analytics(conn, program_id, since, until)


@router.get(
    "/programs/{program_id}/experiments",
    response_model=ExperimentReport,
    dependencies=[Depends(require_program_access)],
)
async def get_experiments(
    program_id: UUID,
    request: Request,
    version: int | None = Query(
        default=None, ge=1, le=2**31 - 1, description="Only participants enrolled under it"
    ),
) -> Any:
    rt = runtime_of(request)
    await _program_exists(rt.pool, program_id)
    if version is not None and not await rt.pool.fetchval(
        "SELECT true FROM program_versions WHERE program_id = $1 AND version = $2",
        program_id,
        version,
    ):
        raise Problem(404, "version-not-found", f"No version {version}", field="version")
    async with rt.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        return await queries.experiment_report(conn, program_id, version)


@router.post(
    "/programs/{program_id}/nps",
    status_code=201,
    response_model=NpsRecorded,
    dependencies=[Depends(require_program_access)],
    responses={200: {"model": NpsRecorded, "description": "The same answer, recorded before"}},
)
async def post_nps(
    program_id: UUID,
    body: NpsAnswer,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Any:
    """Record a customer's 0-10 answer. With ``links.invite_promoters`` in the program, a
    promoter (9-10) who is not a participant is enrolled and gets the welcome."""
    rt = runtime_of(request)
    enrolled: list[str] = []

    async def effect(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        status, out, code = await nps.record_answer(conn, rt, program_id, body)
        if code is not None:
            enrolled.append(code)
        return status, out

    response = await run_idempotent(
        rt.pool,
        scope=f"nps:{program_id}",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=effect,
    )
    for code in enrolled:
        forget_code(request, code)
    return response


@router.get(
    "/programs/{program_id}/nps",
    response_model=NpsReport,
    dependencies=[Depends(require_program_access)],
)
async def get_nps(
    program_id: UUID,
    request: Request,
    since: date | None = Query(default=None),
    until: date | None = Query(default=None),
) -> Any:
    rt = runtime_of(request)
    since, until = date_range(since, until)
    await _program_exists(rt.pool, program_id)
    return await queries.nps_report(rt.pool, program_id, since, until)


async def csv_response(request: Request, program_id: UUID, kind: str) -> StreamingResponse:
    """A streamed CSV export (``referrals`` or ``rewards``); the connection is held while the
    body streams. Also used by the console's export links."""
    rt = runtime_of(request)
    await _program_exists(rt.pool, program_id)
    export = queries.export_referrals_csv if kind == "referrals" else queries.export_rewards_csv

    async def body() -> Any:
        async with rt.pool.acquire() as conn:
            async for chunk in export(conn, program_id):
                yield chunk

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{kind}-{program_id}.csv"',
            "Cache-Control": "no-store",
        },
    )


_CSV = {200: {"content": {"text/csv": {}}, "description": "CSV with a header row (RFC 4180)"}}


@router.get(
    "/programs/{program_id}/export/referrals.csv",
    response_class=StreamingResponse,
    responses=_CSV,  # type: ignore[arg-type]
    dependencies=[Depends(require_program_access)],
)
async def export_referrals(program_id: UUID, request: Request) -> StreamingResponse:
    """Every referral: referrer, referee (the company's customer id, no email), status and
    its times, purchases."""
    return await csv_response(request, program_id, "referrals")


@router.get(
    "/programs/{program_id}/export/rewards.csv",
    response_class=StreamingResponse,
    responses=_CSV,  # type: ignore[arg-type]
    dependencies=[Depends(require_program_access)],
)
async def export_rewards(program_id: UUID, request: Request) -> StreamingResponse:
    """Every reward: side, recipient, amount and unit, state and its times."""
    return await csv_response(request, program_id, "rewards")
