"""The one place that maps topics to handlers in rewards."""

from __future__ import annotations

import asyncpg

from services.rewards.issuing import reward_conversion
from shared.contracts import ApiKeyIssued, ProgramPublished, ReferralConverted
from shared.http.auth import store_key
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope


async def on_program_published(
    conn: asyncpg.Connection, event: ProgramPublished, _: Envelope
) -> None:
    await conn.execute(
        "INSERT INTO program_versions (program_id, version, effective_from, definition) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        event.program_id,
        event.version,
        event.effective_from,
        event.definition.model_dump(mode="json"),
    )
    waiting = await conn.fetch(
        "SELECT conversion_id FROM conversions "
        "WHERE program_id = $1 AND status = 'awaiting_program' ORDER BY converted_at",
        event.program_id,
    )
    for row in waiting:
        await reward_conversion(conn, row["conversion_id"])


async def on_apikey_issued(conn: asyncpg.Connection, event: ApiKeyIssued, _: Envelope) -> None:
    await store_key(conn, event.key_id, event.program_id, event.key_hash)


async def on_referral_converted(
    conn: asyncpg.Connection, event: ReferralConverted, _: Envelope
) -> None:
    await conn.execute(
        "INSERT INTO conversions (conversion_id, referral_id, program_id, referrer_id, "
        "referee_customer_id, order_id, amount, currency, converted_at, program_version, status) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'awaiting_program') "
        "ON CONFLICT DO NOTHING",
        event.conversion_id,
        event.referral_id,
        event.program_id,
        event.referrer_id,
        event.referee_customer_id,
        event.order_id,
        event.amount,
        event.currency,
        event.converted_at,
        event.program_version,
    )
    await reward_conversion(conn, event.conversion_id)


HANDLERS: dict[str, Handler] = {
    ProgramPublished.TOPIC: on_program_published,
    ApiKeyIssued.TOPIC: on_apikey_issued,
    ReferralConverted.TOPIC: on_referral_converted,
}
