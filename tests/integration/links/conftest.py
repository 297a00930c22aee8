"""The links app in-process, with its lifespan (pool, producer, relay, click capture, cache
reader) against a real Postgres and a Tansu broker this folder controls (so tests can stop it
and start an empty one on the same port)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from devstack.embedded import EmbeddedBroker, free_port
from devstack.profiles import TANSU_FETCH_MAX_WAIT_MS
from services.links.app import create_app
from services.links.gateway.api import Gateway
from services.links.settings import LinksSettings
from shared.messaging.producer import ensure_topics
from tests.integration.kafka_helpers import migrated

ADMIN = "test-admin-key"
DEFINITION = {
    "destination_url": "https://shop.example.com/welcome?utm_source=referral",
    "allowed_hosts": ["shop.example.com"],
    "fallback_url": "https://shop.example.com/sorry",
}


@pytest.fixture
def controlled_broker() -> Iterator[EmbeddedBroker]:
    server = EmbeddedBroker(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def links_settings(
    database_url: str, controlled_broker: EmbeddedBroker, tmp_path: Path
) -> LinksSettings:
    settings = LinksSettings(
        database_url=database_url,
        kafka_bootstrap_servers=controlled_broker.bootstrap_servers,
        kafka_enable_idempotence=False,
        kafka_fetch_max_wait_ms=TANSU_FETCH_MAX_WAIT_MS,
        kafka_topic_partitions=3,
        kafka_session_timeout_ms=3000,
        consumer_retry_backoff_s=0.01,
        relay_poll_interval_s=0.2,
        admin_api_key=SecretStr(ADMIN),
        public_base_url="https://ref.example.com",
        click_journal_dir=str(tmp_path / "journal"),
        click_send_timeout_s=1.0,
        # In-process there is no proxy-header middleware: every request has one address.
        redirect_burst=10_000,
    )
    await migrated(database_url, "links")
    await ensure_topics(settings)
    return settings


@dataclass
class Links:
    app: FastAPI
    http: httpx.AsyncClient
    settings: LinksSettings

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN}"}

    @property
    def redirector(self) -> Any:
        return self.app.state.slot.redirector

    async def program(self, **definition: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/v1/programs",
            headers=self.admin,
            json={"name": f"p-{uuid.uuid4().hex[:6]}", "definition": {**DEFINITION, **definition}},
        )
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def enrol(self, program_id: str, **body: Any) -> httpx.Response:
        body.setdefault("external_user_id", f"user-{uuid.uuid4().hex[:8]}")
        return await self.http.post(
            f"/v1/programs/{program_id}/participants", headers=self.admin, json=body
        )

    async def click(self, code: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(f"/r/{code}", **kwargs)


@contextlib.asynccontextmanager
async def running_links(settings: LinksSettings) -> AsyncIterator[Links]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        # As ``python -m services.links`` serves it: the raw-ASGI gateway in front.
        transport = httpx.ASGITransport(
            app=Gateway(app, app.state.slot), client=("198.51.100.7", 5000)
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://links.test") as http:
            # The cache reader positions itself before the test relies on invalidations.
            await asyncio.wait_for(app.state.invalidator.positioned.wait(), 15)
            yield Links(app, http, settings)


@pytest.fixture
async def links(links_settings: LinksSettings) -> AsyncIterator[Links]:
    async with running_links(links_settings) as running:
        yield running
