"""The rewards app in process, over ASGI, on a migrated test database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from services.rewards.app import create_app
from services.rewards.settings import RewardsSettings
from shared.db import create_pool
from shared.settings import ServiceSettings
from tests.integration.kafka_helpers import migrated

ADMIN = {"Authorization": "Bearer admin-key"}
Client = tuple[httpx.AsyncClient, asyncpg.Pool]


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the migrated rewards database, for tests that call the handlers."""
    await migrated(database_url, "rewards")
    pool = await create_pool(database_url, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def app_client(settings: ServiceSettings) -> AsyncIterator[Client]:
    await migrated(settings.database_url, "rewards")
    app = create_app(
        RewardsSettings(
            **{
                **settings.model_dump(),
                "service_name": "rewards",
                "admin_api_key": SecretStr("admin-key"),
            }
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, app.state.runtime.pool
