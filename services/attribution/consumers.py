"""The one place that maps topics to handlers in attribution."""

from __future__ import annotations

import asyncpg

from shared.contracts import ApiKeyIssued, LinkClicked, ParticipantEnrolled, ProgramPublished
from shared.http.auth import store_key
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope


async def on_program_published(
    conn: asyncpg.Connection, event: ProgramPublished, _: Envelope
) -> None:
    await conn.execute(
        "INSERT INTO program_versions (program_id, version, effective_from, status, definition) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        event.program_id,
        event.version,
        event.effective_from,
        event.status,
        event.definition.model_dump(mode="json"),
    )


async def on_participant_enrolled(
    conn: asyncpg.Connection, event: ParticipantEnrolled, _: Envelope
) -> None:
    await conn.execute(
        "INSERT INTO participants (participant_id, program_id, code, external_user_id) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        event.participant_id,
        event.program_id,
        event.code,
        event.external_user_id,
    )


async def on_apikey_issued(conn: asyncpg.Connection, event: ApiKeyIssued, _: Envelope) -> None:
    await store_key(conn, event.key_id, event.program_id, event.key_hash)


async def on_link_clicked(conn: asyncpg.Connection, event: LinkClicked, _: Envelope) -> None:
    await conn.execute(
        "INSERT INTO clicks (click_id, code, program_id, participant_id, clicked_at, "
        "attributable, channel, visitor_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT DO NOTHING",
        event.click_id,
        event.code,
        event.program_id,
        event.participant_id,
        event.clicked_at,
        event.attributable,
        event.channel,
        event.visitor_hash,
    )


HANDLERS: dict[str, Handler] = {
    ProgramPublished.TOPIC: on_program_published,
    ParticipantEnrolled.TOPIC: on_participant_enrolled,
    ApiKeyIssued.TOPIC: on_apikey_issued,
    LinkClicked.TOPIC: on_link_clicked,
}
