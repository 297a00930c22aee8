"""The one place that maps topics to handlers in rewards; each handler calls one use case in
the consumer's transaction (the inbox row is written in it too)."""

from __future__ import annotations

import hashlib

import asyncpg

from services.rewards import erasure, issuing, reversals
from services.rewards import repository as repo
from services.rewards.settings import RewardsSettings
from shared.contracts import (
    ParticipantEnrolled,
    ParticipantErased,
    ProgramPublished,
    ReferralConverted,
    ReferralReversed,
)
from shared.http.key_events import KEY_HANDLERS
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope
from shared.messaging.groups import ConsumerGroup


async def on_program_published(
    conn: asyncpg.Connection, event: ProgramPublished, _: Envelope
) -> None:
    await issuing.record_program_version(conn, event)


async def on_participant_enrolled(
    conn: asyncpg.Connection, event: ParticipantEnrolled, _: Envelope
) -> None:
    # The program (a participant's rewards are read under its own program's path) and the
    # hash of their customer id (the rewards they got as someone's referee), never in clear.
    customer_hash = hashlib.sha256(event.external_user_id.encode()).hexdigest()
    await repo.participants.insert(conn, event.participant_id, event.program_id, customer_hash)


async def on_referral_converted(
    conn: asyncpg.Connection, event: ReferralConverted, _: Envelope
) -> None:
    await issuing.record_conversion(conn, event)


async def on_referral_reversed(
    conn: asyncpg.Connection, event: ReferralReversed, _: Envelope
) -> None:
    await reversals.refund(conn, event)


async def on_participant_erased(
    conn: asyncpg.Connection, event: ParticipantErased, _: Envelope
) -> None:
    await erasure.erase_participant(conn, event)


HANDLERS: dict[str, Handler] = {
    ProgramPublished.TOPIC: on_program_published,
    **KEY_HANDLERS,
    ParticipantEnrolled.TOPIC: on_participant_enrolled,
    ReferralConverted.TOPIC: on_referral_converted,
    ReferralReversed.TOPIC: on_referral_reversed,
    ParticipantErased.TOPIC: on_participant_erased,
}


def consumer_groups(settings: RewardsSettings) -> list[ConsumerGroup]:
    """Every topic in one group, named after the service."""
    return [ConsumerGroup(HANDLERS)]
