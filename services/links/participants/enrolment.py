"""Enrolment: the one way a user becomes a participant, used by ``POST .../participants``
and by NPS promoter invitations alike."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.links.participants import repository as repo
from services.links.participants.codes import new_code
from services.links.participants.models import ParticipantCreate, ParticipantOut
from services.links.participants.sharing import channels_of, share_url
from services.links.programs import repository as programs
from services.links.programs.experiments import assign_variant
from services.links.programs.use_cases import program_not_found
from services.links.settings import EVENT_SOURCE
from shared.contracts import ParticipantEnrolled
from shared.contracts.programs import ProgramDefinition
from shared.http.problems import Problem
from shared.messaging.outbox import enqueue


@dataclass(frozen=True)
class Enrolment:
    participant: dict[str, Any]  # a ParticipantOut
    created: bool


def participant_out(base_url: str, row: Any, definition: dict[str, Any]) -> dict[str, Any]:
    base = base_url.rstrip("/")
    link = f"{base}/r/{row['code']}"
    erased = row["erased_at"] is not None
    return ParticipantOut(
        id=row["id"],
        program_id=row["program_id"],
        external_user_id=row["external_user_id"],
        code=row["code"],
        link_url=link,
        locale=row["locale"],
        variant=row["variant"],
        share_links={} if erased else {c: share_url(link, c) for c in channels_of(definition)},
        qr_svg_url=f"{base}/qr/{row['code']}.svg",
        qr_png_url=f"{base}/qr/{row['code']}.png",
        erased=erased,
        leaderboard_opt_in=row["leaderboard_opt_in"],
        scoreboard_url=None if erased else f"{base}/s/{row['scoreboard_token']}",
    ).model_dump(mode="json")


async def enrol_participant(
    conn: asyncpg.Connection,
    base_url: str,
    program_id: UUID,
    definition: dict[str, Any],
    body: ParticipantCreate,
) -> Enrolment:
    """Enrol one user under ``definition`` (the version in force; the caller checked that the
    program is active), in the caller's transaction: the participant row and
    ``participant.enrolled`` (notifications sends the welcome) commit together. The same user
    again is the same participant (``created`` False)."""
    policy = ProgramDefinition.model_validate(definition)
    await repo.lock_user(conn, program_id, body.external_user_id)
    existing = await repo.find_participant(conn, program_id, body.external_user_id)
    if existing is not None:
        if body.code is not None and body.code.lower() != existing["code"].lower():
            raise Problem(
                409,
                "already-enrolled",
                "This user is enrolled with another code",
                field="code",
            )
        return Enrolment(participant_out(base_url, existing, definition), created=False)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "program_id": program_id,
        **body.model_dump(exclude={"code"}),
        "variant": assign_variant(str(program_id), body.external_user_id, policy.variants),
        "vanity": body.code is not None,
    }
    if body.code is not None:
        if not policy.links.vanity_codes:
            raise Problem(
                422, "vanity-codes-disabled", "This program does not take vanity codes",
                field="code",
            )  # fmt: skip
        values["code"] = body.code
        if not await repo.insert_participant(conn, values):
            raise Problem(409, "code-taken", "This code is already taken", field="code")
    else:
        while True:
            values["code"] = new_code(policy.links.code_length)
            if await repo.insert_participant(conn, values):
                break
            # A bulk import (which takes no per-user lock) may have just enrolled this user.
            if enrolled := await repo.find_participant(conn, program_id, body.external_user_id):
                return Enrolment(participant_out(base_url, enrolled, definition), created=False)
    row = await repo.get_participant(conn, values["id"])
    out = participant_out(base_url, row, definition)
    await enqueue(
        conn,
        ParticipantEnrolled(
            participant_id=values["id"],
            program_id=program_id,
            external_user_id=body.external_user_id,
            code=values["code"],
            link_url=out["link_url"],
            email=body.email,
            name=body.name,
            locale=body.locale,
            variant=values["variant"],
            enrolled_at=row["created_at"],
        ),
        source=EVENT_SOURCE,
    )
    return Enrolment(out, created=True)


async def enrol(
    pool: asyncpg.Pool, base_url: str, program_id: UUID, body: ParticipantCreate
) -> Enrolment:
    """``POST .../participants``: the version in force must exist and be active."""
    async with pool.acquire() as conn, conn.transaction():
        current = await open_version(conn, program_id)
        return await enrol_participant(conn, base_url, program_id, current["definition"], body)


async def open_version(conn: asyncpg.Connection | asyncpg.Pool, program_id: UUID) -> Any:
    """The version in force, if the program takes enrolments: else 404 or 409."""
    current = await programs.in_force(conn, program_id, datetime.now(UTC))
    if current is None:
        if await programs.get_program(conn, program_id) is None:
            raise program_not_found(program_id)
        raise Problem(409, "program-not-in-force", "No version of this program is in force")
    if current["status"] != "active":
        raise Problem(409, "program-paused", "The program takes no new enrolments")
    return current
