"""NPS answers, and the invitation of promoters into the referral program.

An answer is one row per (program, customer, answered_at): the same answer sent again is the
same answer. When the program's links section has ``invite_promoters`` and the score is 9 or
10, a customer who is not a participant yet is enrolled through the same function as
``POST /participants`` (in the same transaction), so ``participant.enrolled`` goes out and
notifications sends the welcome. A customer who answers twice is enrolled once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import asyncpg

from services.links import repository as repo
from services.links.analytics.models import NpsAnswer, NpsRecorded
from services.links.api import enrol_participant
from services.links.models import ParticipantCreate
from shared.http.problems import Problem
from shared.service import Runtime

PROMOTER_MIN = 9
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_CLOCK_SKEW = timedelta(minutes=5)
PASSIVE_MIN = 7


def category(score: int) -> Literal["promoter", "passive", "detractor"]:
    if score >= PROMOTER_MIN:
        return "promoter"
    return "passive" if score >= PASSIVE_MIN else "detractor"


def _answered_at(value: datetime | None) -> datetime:
    """Now by default; else a time with a zone, not in the future (a little clock skew
    allowed) and not before 2000."""
    now = datetime.now(UTC)
    if value is None:
        return now
    if value.tzinfo is None:
        raise Problem(422, "validation-error", "answered_at needs a time zone", field="answered_at")
    try:
        ok = _EARLIEST <= value <= now + _CLOCK_SKEW
    except OverflowError:  # an offset that pushes the time out of range
        ok = False
    if not ok:
        raise Problem(
            422,
            "answered-at-out-of-range",
            "answered_at must be between 2000 and now",
            field="answered_at",
        )
    return value


def _out(row: asyncpg.Record) -> dict[str, Any]:
    return NpsRecorded(
        response_id=row["id"],
        program_id=row["program_id"],
        customer_id=row["customer_id"],
        score=row["score"],
        category=category(row["score"]),
        answered_at=row["answered_at"],
        invited_participant_id=row["invited_participant_id"],
    ).model_dump(mode="json")


async def record_answer(
    conn: asyncpg.Connection, rt: Runtime, program_id: UUID, answer: NpsAnswer
) -> tuple[int, dict[str, Any], str | None]:
    """(status, NpsRecorded, the code of a participant just enrolled or None), in the
    caller's transaction."""
    if await conn.fetchval("SELECT true FROM programs WHERE id = $1", program_id) is None:
        raise Problem(404, "program-not-found", f"No program {program_id}", field="program_id")
    answered_at = answer.answered_at or datetime.now(UTC)
    if answered_at.tzinfo is None:
        raise Problem(422, "validation-error", "answered_at needs a time zone", field="answered_at")
    row = await conn.fetchrow(
        "INSERT INTO nps_responses (id, program_id, customer_id, score, answered_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING *",
        uuid.uuid4(),
        program_id,
        answer.customer_id,
        answer.score,
        answered_at,
    )
    if row is None:  # this very answer was recorded before
        row = await conn.fetchrow(
            "SELECT * FROM nps_responses "
            "WHERE program_id = $1 AND customer_id = $2 AND answered_at = $3",
            program_id,
            answer.customer_id,
            answered_at,
        )
        if row["score"] != answer.score:
            raise Problem(
                409,
                "nps-answer-conflict",
                "This customer's answer at this time was recorded with another score",
                field="score",
            )
        return 200, _out(row), None
    code = None
    if answer.score >= PROMOTER_MIN:
        code = await _invite(conn, rt, program_id, answer, row["id"])
        if code is not None:
            row = await conn.fetchrow("SELECT * FROM nps_responses WHERE id = $1", row["id"])
    return 201, _out(row), code


async def _invite(
    conn: asyncpg.Connection, rt: Runtime, program_id: UUID, answer: NpsAnswer, response: UUID
) -> str | None:
    """Enrol a promoter if the program asks for it, is active and they are not enrolled yet;
    the new participant's code, or None."""
    current = await repo.in_force(conn, program_id, datetime.now(UTC))
    if current is None or current["status"] != "active":
        return None
    definition = current["definition"]
    if not (definition.get("links") or {}).get("invite_promoters"):
        return None
    enrolment = await enrol_participant(
        conn,
        rt,
        program_id,
        definition,
        ParticipantCreate(
            external_user_id=answer.customer_id,
            email=answer.email,
            name=answer.name,
            locale=answer.locale,
        ),
    )
    if not enrolment.created:
        return None
    await conn.execute(
        "UPDATE nps_responses SET invited_participant_id = $2 WHERE id = $1",
        response,
        enrolment.participant["id"],
    )
    return str(enrolment.participant["code"])
