"""The version in force at a time, as the repository's query picks it from the versions
``program.published`` stored (signups and conversions use it): the highest version whose
``effective_from`` is not after that time, with its own sections."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.attribution.read_models import on_program_published
from services.attribution.repository import inputs
from shared.contracts.programs import ProgramDefinition
from shared.db import create_pool
from shared.messaging.outbox import envelope_for
from shared.settings import ServiceSettings
from tests.factories import program_published
from tests.integration.kafka_helpers import migrated

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
async def pool(settings: ServiceSettings) -> AsyncIterator[asyncpg.Pool]:
    await migrated(settings.database_url, "attribution")
    pool = await create_pool(settings.database_url)
    yield pool
    await pool.close()


@pytest.mark.parametrize(
    ("versions", "at", "expected"),
    [
        ([], T0, None),
        ([(1, T0 + timedelta(seconds=1))], T0, None),
        ([(1, T0)], T0, 1),
        ([(1, T0), (2, T0 + 10 * DAY)], T0 + 5 * DAY, 1),
        ([(1, T0), (2, T0 + 10 * DAY)], T0 + 10 * DAY, 2),
        ([(1, T0), (2, T0 + 10 * DAY)], T0 + 99 * DAY, 2),
        ([(3, T0 + DAY), (1, T0), (2, T0 + 2 * DAY)], T0 + DAY + timedelta(hours=1), 3),
        ([(1, T0), (2, T0 + DAY), (3, T0 + 30 * DAY)], T0 + 2 * DAY, 2),
    ],
    ids=[
        "no-versions",
        "none-eligible-yet",
        "effective-exactly-now",
        "future-version-ignored",
        "new-version-at-its-start",
        "latest-of-all",
        "highest-eligible-regardless-of-order",
        "future-versions-ignored",
    ],
)
async def test_the_version_in_force(
    pool: asyncpg.Pool, versions: list[tuple[int, datetime]], at: datetime, expected: int | None
) -> None:
    program_id = uuid.uuid4()
    async with pool.acquire() as conn:
        for version, effective_from in versions:
            # Each version with its own window, to see that its own sections are returned.
            definition = ProgramDefinition(
                destination_url="https://shop.example.com/",
                attribution={"window_days": version},
            )
            event = program_published(
                program_id, version=version, effective_from=effective_from, definition=definition
            )
            await on_program_published(conn, event, envelope_for(event, "/test"))
        version, attribution, _ = await inputs.policies_in_force(conn, program_id, at)
    assert version == expected
    assert attribution.window_days == (expected if expected is not None else 90)
