"""JSON routes of the analytics: the public scoreboard (its token is the secret), and per
program (admin key or the program's key) the leaderboard, analytics, experiments, NPS and
the CSV exports."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from services.links.gateway.cache import forget_code
from services.links.insights import exports, nps, reports, scoreboards, story
from services.links.insights.models import (
    ExperimentReport,
    LeaderboardRow,
    NpsAnswer,
    NpsRecorded,
    NpsReport,
    ProgramAnalytics,
    Scoreboard,
)
from services.links.insights.ranges import date_range
from services.links.insights.story_models import ParticipantStory
from services.links.programs import repository as programs
from services.links.programs.use_cases import program_not_found
from shared.http.auth import bearer_token, require_program_access
from shared.http.idempotency import MAX_KEY_LENGTH, run_idempotent
from shared.http.openapi import problem_responses
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["analytics"])


async def _program_exists(pool: asyncpg.Pool, program_id: UUID) -> None:
    if not await programs.program_exists(pool, program_id):
        raise program_not_found(program_id)


# Public by design (the token is the key); listed as such in tests/unit/test_api_auth.py.
@router.get(
    "/scoreboards/{token}",
    response_model=Scoreboard,
    tags=["public"],
    responses=problem_responses(404),
)
async def get_scoreboard(token: str, request: Request) -> Any:
    """A participant's scoreboard (public: the unguessable token in their scoreboard URL is
    the key)."""
    rt = runtime_of(request)
    board = await scoreboards.scoreboard(
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
    responses=problem_responses(404),
)
async def get_leaderboard(
    program_id: UUID, request: Request, limit: int = Query(default=10, ge=1, le=100)
) -> Any:
    rt = runtime_of(request)
    await _program_exists(rt.pool, program_id)
    return await scoreboards.leaderboard(rt.pool, program_id, limit=limit)


@router.get(
    "/programs/{program_id}/analytics",
    response_model=ProgramAnalytics,
    dependencies=[Depends(require_program_access)],
    responses=problem_responses(404),
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
        return await reports.program_analytics(conn, program_id, since, until)


@router.get(
    "/programs/{program_id}/experiments",
    response_model=ExperimentReport,
    dependencies=[Depends(require_program_access)],
    responses=problem_responses(404),
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
    if version is not None and not await programs.version_exists(rt.pool, program_id, version):
        raise Problem(404, "version-not-found", f"No version {version}", field="version")
    async with rt.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        return await reports.experiment_report(conn, program_id, version)


@router.post(
    "/programs/{program_id}/nps",
    status_code=201,
    response_model=NpsRecorded,
    dependencies=[Depends(require_program_access)],
    responses={
        200: {"model": NpsRecorded, "description": "The same answer, recorded before"},
        **problem_responses(404, 409),
    },
)
async def post_nps(
    program_id: UUID,
    body: NpsAnswer,
    request: Request,
    idempotency_key: str | None = Header(
        default=None, alias="Idempotency-Key", min_length=1, max_length=MAX_KEY_LENGTH
    ),
) -> Any:
    """Record a customer's 0-10 answer. With ``links.invite_promoters`` in the program, a
    promoter (9-10) who is not a participant is enrolled and gets the welcome."""
    rt = runtime_of(request)
    base_url = rt.settings.public_base_url  # type: ignore[attr-defined]
    enrolled: list[str] = []

    async def effect(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        status, out, code = await nps.record_answer(conn, base_url, program_id, body)
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
        forget_code(request.app.state, code)
    return response


@router.get(
    "/programs/{program_id}/nps",
    response_model=NpsReport,
    dependencies=[Depends(require_program_access)],
    responses=problem_responses(404),
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
    return await reports.nps_report(rt.pool, program_id, since, until)


@router.get(
    "/programs/{program_id}/participants/{participant_id}/story",
    response_model=ParticipantStory,
    dependencies=[Depends(require_program_access)],
    responses=problem_responses(404),
    tags=["support"],
)
async def get_story(program_id: UUID, participant_id: UUID, request: Request) -> Any:
    """A participant's whole story for a support agent: enrolment, shares and clicks, the
    referrals they made with attribution's decisions and rules, purchases and refunds, rewards
    of both sides, milestones, the ledger (from rewards) and the messages sent (from
    notifications). A service that does not answer in time leaves its part out: ``parts``
    says which and why, and ``complete`` is false."""
    rt = runtime_of(request)
    await _program_exists(rt.pool, program_id)
    # Rewards and notifications are asked with the caller's own key (the admin key or this
    # program's key, which they accept too): the story never reaches further than its caller.
    found = await story.participant_story(
        rt.pool,
        program_id,
        participant_id,
        story.sources(rt.settings, bearer_token(request)),  # type: ignore[arg-type]
    )
    if found is None:
        raise Problem(
            404, "participant-not-found", f"No participant {participant_id}", field="participant_id"
        )
    return found


async def csv_response(request: Request, program_id: UUID, kind: str) -> StreamingResponse:
    """A streamed CSV export (``referrals`` or ``rewards``); the connection is held while the
    body streams."""
    rt = runtime_of(request)
    await _program_exists(rt.pool, program_id)

    async def body() -> Any:
        async with rt.pool.acquire() as conn:
            async for chunk in exports.export_csv(conn, kind, program_id):
                yield chunk

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{kind}-{program_id}.csv"',
            "Cache-Control": "no-store",
        },
    )


_CSV = {
    200: {"content": {"text/csv": {}}, "description": "CSV with a header row (RFC 4180)"},
    **problem_responses(404),
}


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
