"""The attribution app in-process (its real lifespan: pool, producer, relay, consumer) over a
fresh database and broker, with helpers that seed its read models the way links would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.attribution.app import create_app
from services.attribution.consumers import consumer_groups
from services.attribution.settings import AttributionSettings
from shared.contracts.programs import ProgramDefinition
from shared.http.auth import new_program_key
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import envelope_for
from shared.settings import ServiceSettings
from tests.factories import api_key_issued, link_clicked, participant_enrolled, program_published
from tests.integration.kafka_helpers import migrated

# Every topic's per-message handler, as the service's consumer groups declare them.
HANDLERS = {
    topic: handler
    for group in consumer_groups(AttributionSettings())
    for topic, handler in group.handlers.items()
}


async def apply(pool: asyncpg.Pool, event: Any) -> None:
    env: Envelope = envelope_for(event, "/test")
    async with pool.acquire() as conn, conn.transaction():
        await HANDLERS[event.TOPIC](conn, event, env)


@dataclass
class Tracking:
    client: httpx.AsyncClient
    pool: asyncpg.Pool
    runtime: Any
    program_id: uuid.UUID = field(default_factory=uuid.uuid4)
    key: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def publish_program(
        self, *, version: int = 1, effective_from: datetime | None = None, **sections: Any
    ) -> None:
        definition = ProgramDefinition(destination_url="https://shop.example.com/", **sections)
        await apply(
            self.pool,
            program_published(
                self.program_id,
                version=version,
                effective_from=effective_from or datetime.now(UTC) - timedelta(days=365),
                definition=definition,
            ),
        )

    async def issue_key(self) -> None:
        issued = new_program_key()
        await apply(
            self.pool,
            api_key_issued(self.program_id, key_id=issued.key_id, key_hash=issued.key_hash),
        )
        self.key = issued.secret

    async def enroll(
        self, *, external_user_id: str | None = None, email: str | None = None,
        variant: str | None = None,
    ) -> tuple[uuid.UUID, str]:  # fmt: skip
        named = {"external_user_id": external_user_id} if external_user_id else {}
        event = participant_enrolled(self.program_id, email=email, variant=variant, **named)
        await apply(self.pool, event)
        return event.participant_id, event.code

    async def click(
        self,
        participant_id: uuid.UUID,
        *,
        ago: timedelta = timedelta(minutes=5),
        attributable: bool = True,
        visitor_hash: str | None = None,
    ) -> uuid.UUID:
        event = link_clicked(
            self.program_id,
            participant_id,
            clicked_at=datetime.now(UTC) - ago,
            attributable=attributable,
            visitor_hash=visitor_hash,
        )
        await apply(self.pool, event)
        return event.click_id

    async def post(self, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.client.post(f"/v1/{path}", json=body, headers={**self.auth, **headers})

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/v1/{path}", params=params, headers=self.auth)

    async def events(self, topic: str) -> list[dict[str, Any]]:
        import json

        rows = await self.pool.fetch(
            "SELECT key, payload FROM outbox WHERE topic = $1 ORDER BY id", topic
        )
        return [{"key": r["key"], **json.loads(bytes(r["payload"]))} for r in rows]

    async def count(self, sql: str, *args: Any) -> int:
        return int(await self.pool.fetchval(sql, *args))


@pytest.fixture
async def tracking(settings: ServiceSettings) -> AsyncIterator[Tracking]:
    await migrated(settings.database_url, "attribution")
    app_settings = AttributionSettings(
        **{**settings.model_dump(), "service_name": "attribution", "db_pool_max": 20}
    )
    app = create_app(app_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            t = Tracking(client, app.state.runtime.pool, app.state.runtime)
            await t.publish_program()
            await t.issue_key()
            yield t
