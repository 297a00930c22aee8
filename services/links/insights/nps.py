"""NPS answers, and the invitation of promoters into the referral program.

An answer is one row per (program, customer, answered_at): the same answer sent again is the
same answer. When the program's links section has ``invite_promoters`` and the score is 9 or
10, a customer who is not a participant yet is enrolled by the same use case as
``POST /participants`` (in the same transaction), so ``participant.enrolled`` goes out and
notifications sends the welcome. A customer who answers twice is enrolled once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from services.links.insights import repository as repo
from services.links.insights.models import NpsAnswer, NpsRecorded
from services.links.participants.enrolment import enrol_participant
from services.links.participants.models import ParticipantCreate
from services.links.programs import repository as programs
from services.links.programs.use_cases import program_not_found
from shared.http.problems import Problem

PROMOTER_MIN = 9
PASSIVE_MIN = 7


def category(score: int) -> Literal["promoter", "passive", "detractor"]:
    if score >= PROMOTER_MIN:
        return "promoter"
    return "passive" if score >= PASSIVE_MIN else "detractor"


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
    conn: asyncpg.Connection, base_url: str, program_id: UUID, answer: NpsAnswer
) -> tuple[int, dict[str, Any], str | None]:
    """(status, NpsRecorded, the code of a participant just enrolled or None), in the
    caller's transaction."""
    if not await programs.program_exists(conn, program_id):
        raise program_not_found(program_id)
    answered_at = answer.answered_at or datetime.now(UTC)
    if answered_at.tzinfo is None:
        raise Problem(422, "validation-error", "answered_at needs a time zone", field="answered_at")
    row = await repo.insert_nps_answer(
        conn, uuid.uuid4(), program_id, answer.customer_id, answer.score, answered_at
    )
    if row is None:  # this very answer was recorded before
        row = await repo.find_nps_answer(conn, program_id, answer.customer_id, answered_at)
        assert row is not None
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
        participant = await _invite(conn, base_url, program_id, answer)
        if participant is not None:
            row = await repo.mark_invited(conn, row["id"], participant["id"])
            code = str(participant["code"])
    return 201, _out(row), code


async def _invite(
    conn: asyncpg.Connection, base_url: str, program_id: UUID, answer: NpsAnswer
) -> dict[str, Any] | None:
    """Enrol a promoter if the program asks for it, is active and they are not enrolled yet;
    the new participant (a ParticipantOut), or None."""
    current = await programs.in_force(conn, program_id, datetime.now(UTC))
    if current is None or current["status"] != "active":
        return None
    definition = current["definition"]
    if not (definition.get("links") or {}).get("invite_promoters"):
        return None
    enrolment = await enrol_participant(
        conn,
        base_url,
        program_id,
        definition,
        ParticipantCreate(
            external_user_id=answer.customer_id,
            email=answer.email,
            name=answer.name,
            locale=answer.locale,
        ),
    )
    return enrolment.participant if enrolment.created else None
