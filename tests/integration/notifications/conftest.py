"""A migrated notifications database, a real SMTP server and webhook receiver, and helpers
to apply events through the service's own handlers (the consumer's transaction)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from services.notifications.app import create_app
from services.notifications.consumers import consumer_groups
from services.notifications.context import Context
from services.notifications.delivery import Sender
from services.notifications.settings import NotificationsSettings
from shared.contracts import ParticipantEnrolled, ProgramPublished
from shared.contracts.base import Event
from shared.db import create_pool
from shared.http.outbound import new_webhook_secret
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import envelope_for
from shared.settings import ServiceSettings
from tests.integration.kafka_helpers import migrated
from tests.integration.notifications.receivers import SmtpServer, WebhookReceiver

NOW = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.stop()


async def send_once(sender: Sender) -> int:
    """Claim one batch per channel, send it, record each outcome: one attempt per due
    message, so a test can count attempts."""
    total = 0
    for channel in sender.channels():
        rows, signing = await sender.claim(channel, sender.settings.notify_sender_batch_size)
        await sender.record(list(await asyncio.gather(*(sender.deliver(r, signing) for r in rows))))
        total += len(rows)
    return total


@dataclass
class World:
    pool: asyncpg.Pool
    settings: NotificationsSettings
    smtp: SmtpServer
    # As in the service: one context (settings, definitions cache) for handlers and scheduler.
    context: Context = field(init=False)
    handlers: dict[str, Handler] = field(init=False)

    def __post_init__(self) -> None:
        self.context = Context(self.settings)
        [group] = consumer_groups(self.settings, self.context)
        self.handlers = dict(group.handlers)

    async def apply(self, event: Event, env: Envelope | None = None) -> Envelope:
        env = env or envelope_for(event, "/test")
        handler = self.handlers[event.TOPIC]
        async with self.pool.acquire() as conn, conn.transaction():
            await handler(conn, event, env)
        return env

    def sender(self) -> Sender:
        return Sender(self.pool, self.settings)

    async def send_all(self) -> None:
        sender = self.sender()
        try:
            await send_once(sender)
        finally:
            await sender.close()

    async def deliveries(self, **where: Any) -> list[asyncpg.Record]:
        clauses = " AND ".join(f"{k} = ${i + 1}" for i, k in enumerate(where)) or "true"
        return await self.pool.fetch(
            f"SELECT * FROM deliveries WHERE {clauses} ORDER BY created_at", *where.values()
        )

    async def program(self, definition: dict[str, Any] | None = None) -> uuid.UUID:
        program_id = uuid.uuid4()
        await self.apply(
            ProgramPublished.model_validate(
                {
                    "program_id": program_id,
                    "version": 1,
                    "effective_from": NOW,
                    "name": "Test program",
                    "definition": {
                        "destination_url": "https://shop.example.com/",
                        **(definition or {}),
                    },
                }
            )
        )
        return program_id

    async def enrol(
        self, program_id: uuid.UUID, *, email: str | None = None, locale: str = "en", **extra: Any
    ) -> ParticipantEnrolled:
        participant_id = uuid.uuid4()
        event = ParticipantEnrolled(
            participant_id=participant_id,
            program_id=program_id,
            external_user_id=f"u-{participant_id.hex[:6]}",
            code="ABCDEFGH23",
            link_url=f"https://ref.example.com/r/{participant_id.hex[:10]}",
            email=email,
            locale=locale,
            enrolled_at=NOW,
            **extra,
        )
        await self.apply(event)
        return event

    async def endpoint(
        self, program_id: uuid.UUID, url: str, **columns: Any
    ) -> tuple[uuid.UUID, str]:
        endpoint_id, secret = uuid.uuid4(), new_webhook_secret()
        await self.pool.execute(
            "INSERT INTO webhook_endpoints (id, program_id, url, secret) VALUES ($1, $2, $3, $4)",
            endpoint_id,
            program_id,
            url,
            secret,
        )
        for column, value in columns.items():
            await self.pool.execute(
                f"UPDATE webhook_endpoints SET {column} = $2 WHERE id = $1", endpoint_id, value
            )
        return endpoint_id, secret


@pytest.fixture
async def world(database_url: str, smtp: SmtpServer) -> AsyncIterator[World]:
    await migrated(database_url, "notifications")
    settings = NotificationsSettings(
        database_url=database_url,
        admin_api_key=SecretStr("admin"),
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_timeout_s=2.0,
        outbound_allow_private_networks=True,
        notify_retry_schedule_s=[0.0, 0.0, 0.0, 0.0],
        notify_webhook_disable_after=3,
        notify_webhook_timeout_s=2.0,
        notifications_public_url="https://notify.example.com",
    )
    pool = await create_pool(database_url)
    try:
        yield World(pool, settings, smtp)
    finally:
        await pool.close()


@pytest.fixture
async def api(world: World, settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The notifications app in-process (its real lifespan: pool, producer, consumer, sender)
    on the world's database and a real broker; events still go through ``world.apply``. It
    has no SMTP server, so its own sender leaves the world's emails to ``world.send_all``."""
    app_settings = NotificationsSettings(
        **{
            **settings.model_dump(),
            "service_name": "notifications",
            "admin_api_key": world.settings.admin_api_key,
            "notifications_public_url": world.settings.notifications_public_url,
        }
    )
    app = create_app(app_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://test",
            headers={"Authorization": "Bearer admin"},
        ) as client:
            yield client
