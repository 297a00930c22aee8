"""Where a conversion's work goes, per service: statements and transactions in its database
(``pg_stat_statements`` and ``pg_stat_database``), rows written, and events it produced and
consumed (its own ``/metrics``), counted over one phase of the pipeline benchmark.

The benchmark's own queries (waiting for rewards, timing them) would be counted with the
services' if they ran as the same database user, so the benchmark connects as a role of its
own, ``bench``, and its calls are taken out: each of its statements runs outside an explicit
transaction, so it is one transaction too."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

# Loaded at server start: only the embedded Postgres the benchmark starts has it.
PG_SETTINGS = {"shared_preload_libraries": "pg_stat_statements"}
BENCH_ROLE = "bench"


def as_bench(url: str) -> str:
    """The same server and database, as the benchmark's role."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{BENCH_ROLE}@{host}"))


async def prepare(server_url: str) -> bool:
    """Load the statement counters and create the benchmark's role; False when the server
    does not allow it (an external server without the extension loaded: nothing is counted)."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.fetchval("SELECT count(*) FROM pg_stat_statements")
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", BENCH_ROLE)
        if not exists:
            await conn.execute(f"CREATE ROLE {BENCH_ROLE} LOGIN SUPERUSER")
        return True
    except asyncpg.PostgresError as exc:
        print(f"work counters off: {exc}")
        return False
    finally:
        await conn.close()


@dataclass(frozen=True)
class Work:
    """Cumulative counters of each service at one moment."""

    statements: dict[str, float]
    transactions: dict[str, float]
    rows_written: dict[str, float]
    produced: dict[str, float]
    consumed: dict[str, float]
    # service -> statement text (as pg_stat_statements normalises it) -> (calls, execution ms)
    queries: dict[str, dict[str, tuple[float, float]]]

    def minus(self, before: Work) -> Work:
        def diff(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
            return {k: a.get(k, 0) - b.get(k, 0) for k in a}

        return Work(
            statements=diff(self.statements, before.statements),
            transactions=diff(self.transactions, before.transactions),
            rows_written=diff(self.rows_written, before.rows_written),
            produced=diff(self.produced, before.produced),
            consumed=diff(self.consumed, before.consumed),
            queries={
                service: _since(spent, before.queries.get(service, {}))
                for service, spent in self.queries.items()
            },
        )


def _since(
    now: dict[str, tuple[float, float]], before: dict[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    """Calls and milliseconds of each statement since ``before``."""
    return {
        q: (calls - before.get(q, (0, 0.0))[0], ms - before.get(q, (0, 0.0))[1])
        for q, (calls, ms) in now.items()
    }


_STATEMENTS = """
SELECT d.datname,
       coalesce(sum(s.calls) FILTER (WHERE r.rolname <> $1), 0)::bigint AS services,
       coalesce(sum(s.calls) FILTER (WHERE r.rolname = $1), 0)::bigint AS bench
FROM pg_stat_statements s
JOIN pg_database d ON d.oid = s.dbid
JOIN pg_roles r ON r.oid = s.userid
GROUP BY d.datname
"""
_QUERIES = """
SELECT d.datname, s.query, sum(s.calls)::bigint AS calls, sum(s.total_exec_time) AS exec_ms
FROM pg_stat_statements s
JOIN pg_database d ON d.oid = s.dbid
JOIN pg_roles r ON r.oid = s.userid
WHERE r.rolname <> $1
GROUP BY d.datname, s.query
"""
_DATABASES = """
SELECT datname, xact_commit + xact_rollback AS xacts,
       tup_inserted + tup_updated + tup_deleted AS written
FROM pg_stat_database WHERE datname IS NOT NULL
"""


async def events(
    http: httpx.AsyncClient, url: str, applied_only: bool = True
) -> tuple[float, float]:
    """(events relayed to the broker, events handled by consumers) from ``/metrics``: the
    handled ones that were applied, or all of them (duplicates, dead-lettered) too."""
    produced = consumed = 0.0
    text = (await http.get(f"{url}/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "outbox_sent_total":
                produced += sample.value
            elif sample.name == "events_consumed_total" and (
                not applied_only or sample.labels["result"] == "applied"
            ):
                consumed += sample.value
    return produced, consumed


async def snapshot(server_url: str, databases: dict[str, str], urls: dict[str, list[str]]) -> Work:
    """``databases``: service -> its database name; ``urls``: service -> its replicas' base
    URLs (their events are added up).

    Backends report transaction counts when they go idle, at most once a second: take it a
    couple of seconds after the work ended."""
    conn = await asyncpg.connect(as_bench(server_url))
    try:
        calls = {r["datname"]: r for r in await conn.fetch(_STATEMENTS, BENCH_ROLE)}
        dbs = {r["datname"]: r for r in await conn.fetch(_DATABASES)}
        texts = await conn.fetch(_QUERIES, BENCH_ROLE)
    finally:
        await conn.close()
    statements: dict[str, float] = {}
    transactions: dict[str, float] = {}
    written: dict[str, float] = {}
    for service, db in databases.items():
        own = calls.get(db)
        bench = own["bench"] if own else 0
        statements[service] = own["services"] if own else 0
        transactions[service] = (dbs[db]["xacts"] - bench) if db in dbs else 0
        written[service] = dbs[db]["written"] if db in dbs else 0
    queries: dict[str, dict[str, tuple[float, float]]] = {service: {} for service in databases}
    service_of = {db: service for service, db in databases.items()}
    for row in texts:
        if (service := service_of.get(row["datname"])) is not None:
            queries[service][row["query"]] = (row["calls"], row["exec_ms"])
    produced: dict[str, float] = {}
    consumed: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for service, replicas in urls.items():
            counts = [await events(http, url) for url in replicas]
            produced[service] = sum(out for out, _ in counts)
            consumed[service] = sum(in_ for _, in_ in counts)
    return Work(statements, transactions, written, produced, consumed, queries)


def print_work(
    label: str, work: Work, n: int, top_statements: int = 0
) -> dict[str, dict[str, float]]:
    """One line per service, per conversion, and its ``top_statements`` most called
    statements; returns the per-service figures."""
    table: dict[str, dict[str, float]] = {}
    for service in work.statements:
        row = {
            "statements": work.statements[service] / n,
            "transactions": work.transactions[service] / n,
            "rows_written": work.rows_written[service] / n,
            "events_out": work.produced[service] / n,
            "events_in": work.consumed[service] / n,
        }
        table[service] = row
        print(
            f"[{label}] work per conversion {service:<13} "
            + " ".join(f"{k}={v:.1f}" for k, v in row.items())
        )
        queries = work.queries.get(service, {})
        spent = sum(ms for _, ms in queries.values())
        if top_statements:
            print(f"[{label}]   Postgres execution time {spent / n:.2f} ms/conversion in all")
        for query, (calls, ms) in top_calls(queries, top_statements):
            print(f"[{label}]   {calls / n:5.2f}/conversion {ms / n:6.3f} ms/conversion  {query}")
    return table


def top_calls(
    queries: dict[str, tuple[float, float]], limit: int
) -> list[tuple[str, tuple[float, float]]]:
    """The ``limit`` statements that took Postgres the most execution time (calls and
    milliseconds), each on one line of at most 150 characters."""
    ranked = sorted(((q, cm) for q, cm in queries.items() if cm[0] > 0), key=lambda x: -x[1][1])[
        :limit
    ]
    return [(" ".join(q.split())[:150], cm) for q, cm in ranked]
