"""Bulk enrolment: the rows of a participants import (a CRM's export of existing customers)
checked as ``POST .../participants`` checks a body, and enrolled a batch at a time: one
statement inserts the batch, one writes its ``participant.enrolled`` events to the outbox.
Idempotent like the single enrolment: a user already enrolled is counted ``existing``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from services.links.participants import repository as repo
from services.links.participants.codes import new_code, new_codes
from services.links.participants.models import ParticipantCreate
from services.links.programs import repository as programs
from services.links.programs.experiments import assign_variant
from services.links.settings import EVENT_SOURCE
from shared.contracts import ParticipantEnrolled
from shared.contracts.programs import ProgramDefinition
from shared.imports.models import Columns, InvalidRow, Row, RowError
from shared.imports.runner import Apply, BatchResult, ImportFailed
from shared.imports.upload import ImportKind
from shared.messaging.outbox import enqueue_many, outbox_rows

COLUMNS = Columns(
    required=("external_user_id",),
    optional=("email", "name", "locale", "code", "leaderboard_opt_in"),
)


def check_row(values: dict[str, str | None]) -> dict[str, str | None]:
    """A row as ``POST .../participants`` would take it (an empty cell is an absent field)."""
    body = {k: v for k, v in values.items() if v is not None}
    try:
        participant = ParticipantCreate.model_validate(body)
    except ValidationError as exc:
        raise InvalidRow(
            [(".".join(map(str, e["loc"])) or None, e["msg"]) for e in exc.errors()]
        ) from None
    return {
        **values,
        "locale": participant.locale,
        "leaderboard_opt_in": "true" if participant.leaderboard_opt_in else "false",
    }


PARTICIPANTS = ImportKind("participants", COLUMNS, check_row)


def enrolment_of(base_url: str) -> Apply:
    """The runner's apply function for participants imports."""

    async def apply(conn: asyncpg.Connection, job: asyncpg.Record, rows: list[Row]) -> BatchResult:
        return await enrol_rows(conn, base_url, job["program_id"], rows)

    return apply


async def enrol_rows(
    conn: asyncpg.Connection, base_url: str, program_id: uuid.UUID, rows: list[Row]
) -> BatchResult:
    current = await programs.in_force(conn, program_id, datetime.now(UTC))
    if current is None or current["status"] != "active":
        raise ImportFailed("the program stopped taking enrolments (paused, or no version)")
    policy = ProgramDefinition.model_validate(current["definition"])
    result = BatchResult()
    firsts: dict[str, Row] = {}
    for row in rows:  # a user named twice is enrolled by the first row
        uid = row.values["external_user_id"]
        assert uid is not None  # checked on upload
        if uid in firsts:
            result.existing += 1
        else:
            firsts[uid] = row
    known = await repo.codes_of_users(conn, program_id, list(firsts))
    pending: list[dict[str, Any]] = []
    for uid, row in sorted(firsts.items()):  # one order: concurrent imports do not deadlock
        code = row.values["code"]
        if uid in known:
            if code is not None and code.lower() != known[uid].lower():
                result.errors.append(RowError(row.number, "code", "enrolled with another code"))
            else:
                result.existing += 1
        elif code is not None and not policy.links.vanity_codes:
            result.errors.append(RowError(row.number, "code", "the program takes no vanity codes"))
        else:
            pending.append(_new(program_id, row, policy))
    for values, code in zip(
        pending, new_codes(len(pending), policy.links.code_length), strict=True
    ):
        values["code"] = values["code"] or code
    created = await _insert(conn, program_id, pending, policy, result)
    result.created = len(created)
    link = f"{base_url.rstrip('/')}/r/"
    events = [
        ParticipantEnrolled(
            participant_id=v["id"],
            program_id=program_id,
            external_user_id=v["external_user_id"],
            code=v["code"],
            link_url=link + v["code"],
            email=v["email"],
            name=v["name"],
            locale=v["locale"],
            variant=v["variant"],
            enrolled_at=at,
        )
        for v, at in created
    ]
    await enqueue_many(conn, outbox_rows(events, source=EVENT_SOURCE))
    return result


def _new(program_id: uuid.UUID, row: Row, policy: ProgramDefinition) -> dict[str, Any]:
    uid = row.values["external_user_id"]
    code = row.values["code"]
    return {
        "row": row.number,
        "id": uuid.uuid4(),
        "external_user_id": uid,
        "code": code,  # a random one is drawn for the whole batch at once
        "vanity": code is not None,
        "email": row.values["email"],
        "name": row.values["name"],
        "locale": row.values["locale"],
        "leaderboard_opt_in": row.values["leaderboard_opt_in"] == "true",
        "variant": assign_variant(str(program_id), uid or "", policy.variants),
    }


async def _insert(
    conn: asyncpg.Connection,
    program_id: uuid.UUID,
    pending: list[dict[str, Any]],
    policy: ProgramDefinition,
    result: BatchResult,
) -> list[tuple[dict[str, Any], datetime]]:
    """Insert ``pending``; a row skipped for a taken code gets another random code (or an
    error for a vanity one), one skipped because its user was enrolled meanwhile counts as
    existing."""
    created: list[tuple[dict[str, Any], datetime]] = []
    while pending:
        inserted = await repo.insert_participants(conn, program_id, pending)
        created += [(v, inserted[v["id"]]) for v in pending if v["id"] in inserted]
        missed = [v for v in pending if v["id"] not in inserted]
        if not missed:
            break
        enrolled = await repo.codes_of_users(
            conn, program_id, [v["external_user_id"] for v in missed]
        )
        pending = []
        for v in missed:
            if v["external_user_id"] in enrolled:
                result.existing += 1
            elif v["vanity"]:
                result.errors.append(RowError(v["row"], "code", "this code is already taken"))
            else:
                pending.append({**v, "code": new_code(policy.links.code_length)})
    return created
