"""The handlers every service registers for program keys: each keeps its own copy of the hashes
(issued by links) so it can authenticate server-to-server calls without asking anyone."""

from __future__ import annotations

import asyncpg

from shared.contracts import ApiKeyIssued, ApiKeyRevoked
from shared.http.auth import revoke_key, store_key
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope


async def on_apikey_issued(conn: asyncpg.Connection, event: ApiKeyIssued, _: Envelope) -> None:
    await store_key(conn, event.key_id, event.program_id, event.key_hash)


async def on_apikey_revoked(conn: asyncpg.Connection, event: ApiKeyRevoked, _: Envelope) -> None:
    await revoke_key(conn, event.key_id, event.program_id)


KEY_HANDLERS: dict[str, Handler] = {
    ApiKeyIssued.TOPIC: on_apikey_issued,
    ApiKeyRevoked.TOPIC: on_apikey_revoked,
}
