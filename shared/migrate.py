"""Forward-only SQL migrations with a recorded history.

Each component ships ``migrations/NNN_name.sql``. ``shared`` (outbox, inbox, idempotency, API
keys) is applied to every service database first, then the service's own files. An applied
file must never change: its checksum is recorded and checked on every run.

Usage: ``python -m shared.migrate <service>`` (uses ``DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.resources
import logging
import re
from dataclasses import dataclass

import asyncpg

from shared.db import connect
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

SERVICES = ("links", "attribution", "rewards", "notifications")
_FILE_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# Any constant works; it keeps two migrators of one database from interleaving.
_LOCK_ID = 0x5EF_0001

_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component  text        NOT NULL,
    version    int         NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(component: str) -> list[Migration]:
    package = "shared" if component == "shared" else f"services.{component}"
    folder = importlib.resources.files(package).joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_RE.match(entry.name)
        if match:
            found.append(Migration(component, int(match[1]), match[2], entry.read_text()))
        elif entry.name.endswith(".sql"):
            raise MigrationError(f"{component}: {entry.name} does not match NNN_name.sql")
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{component}: two migrations share a version number")
    return found


def plan(service: str) -> list[Migration]:
    if service not in SERVICES:
        raise MigrationError(f"unknown service {service!r}; expected one of {SERVICES}")
    return discover("shared") + discover(service)


async def apply(conn: asyncpg.Connection, migrations: list[Migration]) -> list[Migration]:
    """Apply what is not applied yet; return what was applied now."""
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await conn.execute(_HISTORY_DDL)
        rows = await conn.fetch("SELECT component, version, checksum FROM schema_migrations")
        done = {(r["component"], r["version"]): r["checksum"] for r in rows}
        applied: list[Migration] = []
        for m in migrations:
            recorded = done.get((m.component, m.version))
            if recorded is not None:
                if recorded != m.checksum:
                    raise MigrationError(
                        f"{m.component} migration {m.version:03d}_{m.name} changed after it was "
                        "applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (component, version, name, checksum) "
                    "VALUES ($1, $2, $3, $4)",
                    m.component,
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("applied migration %s %03d_%s", m.component, m.version, m.name)
            applied.append(m)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)


async def migrate(service: str, dsn: str) -> list[Migration]:
    conn = await connect(dsn)
    try:
        return await apply(conn, plan(service))
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=SERVICES)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    applied = asyncio.run(migrate(args.service, ServiceSettings().database_url))
    print(f"{args.service}: {len(applied)} migration(s) applied")


if __name__ == "__main__":
    main()
