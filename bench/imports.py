"""Throughput of bulk imports: a CSV of N rows (generated on the fly, streamed as the request
body) uploaded to links' participants import and to attribution's customers import, each app
in-process with its real lifespan over an embedded Postgres and broker (or the servers named by
TEST_DATABASE_URL / TEST_KAFKA_BOOTSTRAP_SERVERS).

Prints, per import: the upload rate (rows spooled per second, parse and validation included),
the apply rate (rows enrolled or recorded per second by the runner, from the 202 to
``completed``), end to end, and the process's peak RSS growth (a streamed upload must not
grow with the file).

    python -m bench.imports [--rows 100000] [--only links|attribution] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import resource
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from pydantic import SecretStr

from devstack.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from devstack.profiles import settings_overrides
from services.attribution.app import create_app as attribution_app
from services.attribution.settings import AttributionSettings
from services.links.app import create_app as links_app
from services.links.settings import LinksSettings
from shared.http.auth import new_program_key, store_key
from shared.migrate import apply, discover

ADMIN = "bench-admin-key"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _csv(rows: int, header: str, line: str) -> AsyncIterator[bytes]:
    yield (header + "\r\n").encode()
    lines = []
    for i in range(1, rows + 1):
        lines.append(line.format(i=i))
        if i % 2000 == 0:
            yield "".join(lines).encode()
            lines = []
    yield "".join(lines).encode()


async def _database(server: str, service: str) -> str:
    name = f"bench_{service}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = server.rsplit("/", 1)[0] + f"/{name}"
    conn = await asyncpg.connect(url)
    await apply(conn, discover("shared") + discover(service))
    await conn.close()
    return url


async def _run(app: Any, path: str, headers: dict[str, str], body: AsyncIterator[bytes],
               rows: int, label: str) -> None:  # fmt: skip
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            rss = _rss_mb()
            started = time.perf_counter()
            response = await http.post(
                path, headers={**headers, "Content-Type": "text/csv"}, content=body, timeout=None
            )
            assert response.status_code == 202, response.text
            received = time.perf_counter()
            while True:
                job = (await http.get(response.headers["location"], headers=headers)).json()
                if job["status"] in ("completed", "failed"):
                    break
                await asyncio.sleep(0.2)
            finished = time.perf_counter()
    assert job["status"] == "completed" and job["rows_done"] == rows, job
    print(
        f"imports[{label}]: rows={rows} upload_rows_per_s={rows / (received - started):.0f} "
        f"apply_rows_per_s={rows / (finished - received):.0f} "
        f"end_to_end_rows_per_s={rows / (finished - started):.0f} "
        f"seconds={finished - started:.1f} peak_rss_growth_mb={_rss_mb() - rss:.0f}",
        flush=True,
    )


async def bench_links(server: str, broker: str, rows: int) -> None:
    settings = LinksSettings(
        **settings_overrides("tansu"),
        database_url=await _database(server, "links"),
        kafka_bootstrap_servers=broker,
        admin_api_key=SecretStr(ADMIN),
        public_base_url="https://ref.example.com",
        click_journal_dir=tempfile.mkdtemp(prefix="bench-imports-"),
    )
    app = links_app(settings)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            program = await http.post(
                "/v1/programs",
                headers=admin,
                json={"name": "bench", "definition": {
                    "destination_url": "https://shop.example.com/",
                    "allowed_hosts": ["shop.example.com"]}},
            )  # fmt: skip
            program_id = program.json()["id"]
    body = _csv(rows, "external_user_id,email,name,locale", "crm-{i},c{i}@example.com,C {i},en\r\n")
    await _run(
        links_app(settings),
        f"/v1/programs/{program_id}/imports/participants",
        admin,
        body,
        rows,
        "links participants",
    )


async def bench_attribution(server: str, broker: str, rows: int) -> None:
    url = await _database(server, "attribution")
    settings = AttributionSettings(
        **settings_overrides("tansu"),
        database_url=url,
        kafka_bootstrap_servers=broker,
        admin_api_key=SecretStr(ADMIN),
    )
    issued = new_program_key()
    conn = await asyncpg.connect(url)
    await store_key(conn, issued.key_id, uuid.uuid4(), issued.key_hash)
    await conn.close()
    await _run(
        attribution_app(settings),
        "/v1/customers/imports",
        {"Authorization": f"Bearer {issued.secret}"},
        _csv(rows, "customer_id,email", "cust-{i},c{i}@example.com\r\n"),
        rows,
        "attribution customers",
    )


def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="bench-imports-pg-"))
    root.chmod(0o755)  # the embedded server may run as another user
    return root


async def main(args: argparse.Namespace, root: Path) -> None:
    pg = broker = None
    try:
        if not (server := os.environ.get("TEST_DATABASE_URL", "")):
            pg = EmbeddedPostgres(root / "data", free_port())
            pg.start()
            server = pg.url
        if not (bootstrap := os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS", "")):
            broker = EmbeddedBroker(free_port())
            broker.start()
            bootstrap = broker.bootstrap_servers
        if args.only in (None, "links"):
            await bench_links(server, bootstrap, args.rows)
        if args.only in (None, "attribution"):
            await bench_attribution(server, bootstrap, args.rows)
    finally:
        if broker:
            broker.stop()
        if pg:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--only", choices=("links", "attribution"))
    parser.add_argument("--profile", action="store_true", help="cProfile, top 25 by own time")
    arguments = parser.parse_args()
    if arguments.profile:
        profile = cProfile.Profile()
        profile.runcall(asyncio.run, main(arguments, _root()))
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    else:
        asyncio.run(main(arguments, _root()))
