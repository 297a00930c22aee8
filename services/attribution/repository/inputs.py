"""Queries of what attribution keeps from links' events: program versions (and their parsed
policies), participants and clicks."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.attribution.policy import Click
from shared.contracts import LinkClicked
from shared.contracts.sections.attribution import AttributionPolicy
from shared.contracts.sections.fraud import FraudPolicy

# Program versions.


async def insert_program_version(
    conn: asyncpg.Connection,
    program_id: UUID,
    version: int,
    effective_from: datetime,
    status: str,
    definition: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO program_versions (program_id, version, effective_from, status, definition) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        program_id,
        version,
        effective_from,
        status,
        definition,
    )


# Versions are immutable once published, so their parsed sections are kept in the process.
_POLICIES: dict[tuple[UUID, int], tuple[AttributionPolicy, FraudPolicy]] = {}
_POLICY_CACHE_SIZE = 4096


async def policies_of(
    conn: asyncpg.Connection, program_id: UUID, version: int
) -> tuple[AttributionPolicy, FraudPolicy]:
    """The attribution and fraud sections of one version (defaults for versions written
    before a field existed)."""
    key = (program_id, version)
    cached = _POLICIES.get(key)
    if cached is not None:
        return cached
    definition = await conn.fetchval(
        "SELECT definition FROM program_versions WHERE program_id = $1 AND version = $2",
        program_id,
        version,
    )
    definition = definition or {}
    parsed = (
        AttributionPolicy.model_validate(definition.get("attribution") or {}),
        FraudPolicy.model_validate(definition.get("fraud") or {}),
    )
    if len(_POLICIES) >= _POLICY_CACHE_SIZE:
        _POLICIES.clear()
    _POLICIES[key] = parsed
    return parsed


async def policies_in_force(
    conn: asyncpg.Connection, program_id: UUID, at: datetime
) -> tuple[int | None, AttributionPolicy, FraudPolicy]:
    """The version in force at ``at`` and its attribution and fraud sections (defaults when
    attribution has not seen the program yet)."""
    version = await conn.fetchval(
        "SELECT version FROM program_versions WHERE program_id = $1 "
        "AND effective_from <= $2 ORDER BY version DESC LIMIT 1",
        program_id,
        at,
    )
    if version is None:
        return None, AttributionPolicy(), FraudPolicy()
    return (version, *await policies_of(conn, program_id, version))


# Participants.


async def insert_participant(
    conn: asyncpg.Connection,
    participant_id: UUID,
    program_id: UUID,
    code: str,
    external_user_id: str,
    email_hash: str | None,
    variant: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO participants (participant_id, program_id, code, external_user_id, "
        "email_hash, variant) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        participant_id,
        program_id,
        code,
        external_user_id,
        email_hash,
        variant,
    )


async def participant_by_code(conn: asyncpg.Connection, program_id: UUID, code: str) -> UUID | None:
    """The code as typed, else in upper case (people type codes in lower case)."""
    return await conn.fetchval(
        "SELECT participant_id FROM participants WHERE code = ANY($1::text[]) "
        "AND program_id = $2 ORDER BY code = $3 DESC LIMIT 1",
        list({code.strip(), code.strip().upper()}),
        program_id,
        code.strip(),
    )


async def participant(conn: asyncpg.Connection, participant_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM participants WHERE participant_id = $1", participant_id
    )


async def erase_participant(
    conn: asyncpg.Connection, participant_id: UUID, erased_user_id: str, erased_at: datetime
) -> None:
    """Replace the participant's user id by ``erased_user_id`` and drop their email hash."""
    await conn.execute(
        "UPDATE participants SET external_user_id = $2, email_hash = NULL, "
        "erased_at = $3 WHERE participant_id = $1",
        participant_id,
        erased_user_id,
        erased_at,
    )


# Clicks.

_INSERT_CLICKS = (
    "INSERT INTO clicks (click_id, code, program_id, participant_id, clicked_at, attributable, "
    "channel, visitor_hash, traceparent) "
    "SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::timestamptz[], "
    "$6::boolean[], $7::text[], $8::text[], $9::text[]) ON CONFLICT (click_id) DO NOTHING"
)


async def insert_clicks(
    conn: asyncpg.Connection, clicks: list[tuple[LinkClicked, str | None]]
) -> None:
    """Store clicks (``LinkClicked`` events with their ``traceparent``) in one statement; a
    click already stored is left alone."""
    await conn.execute(
        _INSERT_CLICKS,
        [ev.click_id for ev, _ in clicks],
        [ev.code for ev, _ in clicks],
        [ev.program_id for ev, _ in clicks],
        [ev.participant_id for ev, _ in clicks],
        [ev.clicked_at for ev, _ in clicks],
        [ev.attributable for ev, _ in clicks],
        [ev.channel for ev, _ in clicks],
        [ev.visitor_hash for ev, _ in clicks],
        [traceparent for _, traceparent in clicks],
    )


_CLICK_COLUMNS = (
    "click_id, program_id, participant_id, clicked_at, attributable, visitor_hash, traceparent"
)


async def get_click(conn: asyncpg.Connection | asyncpg.Pool, click_id: UUID) -> Click | None:
    row = await conn.fetchrow(f"SELECT {_CLICK_COLUMNS} FROM clicks WHERE click_id = $1", click_id)
    return Click(**dict(row)) if row else None


async def click_of_program(
    conn: asyncpg.Connection | asyncpg.Pool, program_id: UUID, click_id: UUID
) -> asyncpg.Record | None:
    """The stored click as recorded, if it belongs to the program."""
    return await conn.fetchrow(
        "SELECT click_id, code, participant_id, attributable FROM clicks "
        "WHERE click_id = $1 AND program_id = $2",
        click_id,
        program_id,
    )


async def visitor_clicks(
    conn: asyncpg.Connection, program_id: UUID, visitor_hash: str, since: datetime
) -> list[Click]:
    rows = await conn.fetch(
        f"SELECT {_CLICK_COLUMNS} FROM clicks WHERE program_id = $1 AND visitor_hash = $2 "
        "AND clicked_at >= $3 ORDER BY clicked_at LIMIT 500",
        program_id,
        visitor_hash,
        since,
    )
    return [Click(**dict(r)) for r in rows]
