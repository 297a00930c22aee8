"""What the pipeline benchmark shows when every service runs as several replicas
(``--replicas N``): how the events spread over the replicas of each service (each replica's own
``/metrics``), and how long backends waited for locks in Postgres during a phase.

Lock waiting is sampled from ``pg_stat_activity`` (``wait_event_type = 'Lock'``: heavyweight
locks, i.e. rows, tuples, transaction ids, relations, advisory locks) every ~50 ms; each sample
stands for the time since the previous one. ``log_lock_waits`` would only report waits longer
than ``deadlock_timeout`` (1 s) and needs the server's log parsed: the short waits a hot row
causes under load would go unseen. Sampling misses waits shorter than the interval too, but a
row that serialises the replicas is waited for in most samples, which is what this is for.
Waits are split by kind: ``transactionid``/``tuple`` (rows), ``advisory``, ``relation``, and
``object <catalog> <id>``; ``object pg_database 0`` is the one lock of the whole server that
every transaction which ran ``NOTIFY`` (the outbox trigger) takes at commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg
import httpx

from bench.pipeline_work import events

SAMPLE_EVERY_S = 0.05

# A backend waits for one lock at a time: its ungranted row in pg_locks names the object.
_LOCK_WAITS = """
SELECT a.datname,
       CASE WHEN l.locktype = 'object'
            THEN 'object ' || l.classid::regclass::text || ' ' || l.objid
            ELSE a.wait_event END AS wait_event,
       count(*) AS n
FROM pg_stat_activity a
LEFT JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
WHERE a.wait_event_type = 'Lock' AND a.datname IS NOT NULL
GROUP BY 1, 2
"""


def parse_counts(text: str) -> list[int]:
    """``--replicas`` as given: ``2`` or ``1,2`` (each a run of its own)."""
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise ValueError(f"replica counts must be integers >= 1: {text!r}")
    return counts


def replica_label(service: str, index: int, count: int) -> str:
    """``attribution`` when it runs alone, ``attribution#1``, ``attribution#2``... otherwise."""
    return service if count == 1 else f"{service}#{index + 1}"


def run_label(broker: str, replicas: int, counts: Sequence[int]) -> str:
    """The tag of a run's side-by-side lines: the broker, and the replicas unless every run
    has one (the plain run keeps its ``pipeline[tansu]`` lines)."""
    return broker if list(counts) == [1] else f"{broker},replicas={replicas}"


@dataclass(frozen=True)
class ReplicaEvents:
    """Cumulative events of one replica: handled by its consumers, relayed by its outbox."""

    consumed: float
    relayed: float


async def replica_events(urls: Mapping[str, str]) -> dict[str, ReplicaEvents]:
    """Replica label -> its counters now, from its own ``/metrics``."""
    out = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for label, url in urls.items():
            relayed, consumed = await events(http, url, applied_only=False)
            out[label] = ReplicaEvents(consumed, relayed)
    return out


def spread(
    before: Mapping[str, ReplicaEvents], after: Mapping[str, ReplicaEvents]
) -> dict[str, tuple[float, float, float]]:
    """Replica label -> (events consumed in the phase, its share of its service's consumed
    events, events relayed in the phase). Labels are ``service`` or ``service#i``."""
    consumed = {k: after[k].consumed - before[k].consumed for k in after}
    relayed = {k: after[k].relayed - before[k].relayed for k in after}
    per_service: Counter[str] = Counter()
    for label, n in consumed.items():
        per_service[label.partition("#")[0]] += n
    return {
        label: (n, n / per_service[label.partition("#")[0]] if n else 0.0, relayed[label])
        for label, n in consumed.items()
    }


def print_spread(label: str, table: Mapping[str, tuple[float, float, float]]) -> list[str]:
    """One line per service: each replica's consumed events (and share), relayed events."""
    lines = []
    services = dict.fromkeys(name.partition("#")[0] for name in table)
    for service in services:
        parts = [
            f"{name}={n:.0f} ({share:.0%}, relayed {out:.0f})"
            for name, (n, share, out) in table.items()
            if name.partition("#")[0] == service
        ]
        lines.append(" ".join(parts))
        print(f"[{label}] events consumed per replica: {' '.join(parts)}")
    return lines


@dataclass
class LockWaits:
    """Sampled backends waiting for a lock: seconds per database and per kind of lock."""

    samples: int = 0
    seconds: float = 0.0
    by_database: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, interval_s: float, rows: Sequence[tuple[str, str, int]]) -> None:
        """One sample: (database, wait event, backends waiting) rows, standing for the
        ``interval_s`` since the previous sample."""
        self.samples += 1
        self.seconds += interval_s
        for database, kind, n in rows:
            self.by_database[database] += n * interval_s
            self.by_kind.setdefault(database, Counter())[kind] += n * interval_s

    def summary(self, databases: Sequence[str]) -> str:
        """``referral_x=0.00s (transactionid 0.01)`` for each database, in that order."""
        parts = []
        for database in databases:
            kinds = self.by_kind.get(database, Counter())
            detail = ", ".join(f"{k} {s:.2f}" for k, s in kinds.most_common(3))
            waited = f"{self.by_database[database]:.2f}s"
            parts.append(f"{database}={waited}" + (f" ({detail})" if detail else ""))
        return " ".join(parts)


async def sample_lock_waits(
    server_url: str, stop: asyncio.Event, every_s: float = SAMPLE_EVERY_S
) -> LockWaits:
    """Sample ``pg_stat_activity`` until ``stop`` is set (from the server's maintenance
    database: the services' statement counts do not see these queries)."""
    waits = LockWaits()
    conn = await asyncpg.connect(server_url)
    try:
        last = time.monotonic()
        while not stop.is_set():
            rows = await conn.fetch(_LOCK_WAITS)
            now = time.monotonic()
            waits.add(now - last, [(r["datname"], r["wait_event"], r["n"]) for r in rows])
            last = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        await conn.close()
    return waits
