"""Forward-only migrations against a real Postgres."""

from __future__ import annotations

import dataclasses

import pytest

from shared.db import connect
from shared.migrate import SERVICES, MigrationError, apply, migrate, plan


@pytest.mark.parametrize("service", SERVICES)
async def test_every_service_migrates_and_records_history(database_url: str, service: str) -> None:
    first = await migrate(service, database_url)
    assert first[0].component == "shared"
    assert {m.component for m in first} == {"shared", service}
    assert await migrate(service, database_url) == []  # nothing left to apply

    conn = await connect(database_url)
    try:
        rows = await conn.fetch("SELECT component, version, checksum FROM schema_migrations")
        recorded = {(r["component"], r["version"]): r["checksum"] for r in rows}
        assert recorded == {(m.component, m.version): m.checksum for m in plan(service)}
    finally:
        await conn.close()


async def test_a_changed_migration_is_refused(database_url: str) -> None:
    await migrate("rewards", database_url)
    tampered = [
        dataclasses.replace(m, sql=m.sql + "\n-- edited") if m.component == "rewards" else m
        for m in plan("rewards")
    ]
    conn = await connect(database_url)
    try:
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply(conn, tampered)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_no_trace(database_url: str) -> None:
    broken = dataclasses.replace(
        plan("links")[0],
        component="broken",
        sql="CREATE TABLE ok_table (id int); SELECT * FROM missing;",
    )
    conn = await connect(database_url)
    try:
        with pytest.raises(Exception, match="missing"):
            await apply(conn, [broken])
        assert await conn.fetchval("SELECT to_regclass('ok_table')") is None
        assert (
            await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE component = 'broken'")
            == 0
        )
    finally:
        await conn.close()
