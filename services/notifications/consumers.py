"""The one place that maps topics to handlers in notifications."""

from __future__ import annotations

import uuid
from uuid import UUID

import asyncpg

from services.notifications import messages
from services.notifications.messages import Message
from shared.contracts import ApiKeyIssued, ParticipantEnrolled, RewardIssued
from shared.http.auth import store_key
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope


async def _record(
    conn: asyncpg.Connection,
    env: Envelope,
    program_id: UUID,
    participant_id: UUID,
    message: Message,
) -> None:
    await conn.execute(
        "INSERT INTO notifications (id, event_id, program_id, participant_id, kind, title, body) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        uuid.uuid4(),
        env.id,
        program_id,
        participant_id,
        message.kind,
        message.title,
        message.body,
    )


async def on_participant_enrolled(
    conn: asyncpg.Connection, event: ParticipantEnrolled, env: Envelope
) -> None:
    await conn.execute(
        "INSERT INTO participants (participant_id, program_id, email, name, locale, link_url) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        event.participant_id,
        event.program_id,
        event.email,
        event.name,
        event.locale,
        event.link_url,
    )
    await _record(conn, env, event.program_id, event.participant_id, messages.welcome(event))


async def on_reward_issued(conn: asyncpg.Connection, event: RewardIssued, env: Envelope) -> None:
    if event.side != "referrer":
        return  # referees are not participants; their channel comes with email delivery
    await _record(conn, env, event.program_id, event.referrer_id, messages.reward_earned(event))


async def on_apikey_issued(conn: asyncpg.Connection, event: ApiKeyIssued, _: Envelope) -> None:
    await store_key(conn, event.key_id, event.program_id, event.key_hash)


HANDLERS: dict[str, Handler] = {
    ParticipantEnrolled.TOPIC: on_participant_enrolled,
    RewardIssued.TOPIC: on_reward_issued,
    ApiKeyIssued.TOPIC: on_apikey_issued,
}
