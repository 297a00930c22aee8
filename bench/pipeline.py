"""The whole pipeline under load: referral journeys through the four services as real processes.

Starts the stack (embedded Postgres and broker unless TEST_DATABASE_URL /
TEST_KAFKA_BOOTSTRAP_SERVERS name servers), enrols participants and signs up one referee per
journey (typed referral code) for both phases, waits until the services are idle, then sends
the conversions: first at a fixed offered rate (an open-loop paced sender: request i is due at
start + i/rate whatever the answers do; requests sent late are counted), then at full speed
(``wrk`` with a Lua script, each conversion once), and waits until every reward is issued and
every notification recorded.

Prints conversions per second sustained (first conversion accepted -> last reward issued),
p50/p95/p99 of conversion accepted -> reward issued and -> notification recorded (database
timestamps of the services, one clock: "accepted" is attribution's ``converted_at``), the
driver's HTTP latency, CPU seconds per service and for Postgres and the broker during each
phase and with no traffic at all (before the phases), peak RSS per service, and a ratio
against a baseline measured in the same run: the rate at which ``wrk`` gets answers from
attribution's /healthz (the HTTP ceiling of client + server on this machine). Last line:

    pipeline: conversions_per_s=<n> p99_reward_ms=<x> p99_notify_ms=<y> lost=<n> duplicated=<n>
              ratio=<conversions/s over the baseline> cpu_ms_per_conversion=<all processes>

Each phase also prints the work per conversion of every service (bench/pipeline_work.py):
statements and transactions in its database, rows written, events produced and consumed.

    python -m bench.pipeline [--journeys N] [--rate R] [--concurrency C] [--profile SERVICE]
        [--broker tansu|kafka|kafka-cluster|tansu,kafka] [--replicas N|1,2]

With ``--broker tansu,kafka`` the whole run is made on each broker in turn and closes with
their lines side by side (``pipeline[tansu]: ...``, ``pipeline[kafka]: ...``).

``--replicas N`` (default 1) runs every service as N processes (bench/replicas.py): N members
of each consumer group sharing the topics' partitions, and the conversions (signups, the paced
sender, one ``wrk`` per replica) split between attribution's replicas. Each phase prints the
events each replica consumed and relayed (its own ``/metrics``) and the time backends waited
for locks in each database (bench/pipeline_replicas.py); CPU and memory are per replica.
``--replicas 1,2`` makes the whole run once per count, for lines side by side
(``pipeline[tansu,replicas=1]: ...``, ``pipeline[tansu,replicas=2]: ...``); with
``--broker tansu,kafka`` too, every broker runs every count. The ratio of a run with replicas
is against the ``/healthz`` baseline of one attribution replica.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil

from bench.pipeline_driver import RoundRobinHttp, paced, post_all, wrk_baseline, wrk_conversions
from bench.pipeline_replicas import (
    LockWaits,
    parse_counts,
    print_spread,
    replica_events,
    replica_label,
    run_label,
    sample_lock_waits,
    spread,
)
from bench.pipeline_work import PG_SETTINGS, Work, as_bench, prepare, print_work, snapshot
from bench.replicas import ServiceReplicas
from bench.servers import tree_cpu
from devstack.profiles import BrokerKind, broker_kind
from devstack.stack import Stack, StackConfig, database_url_for

SERVICES = ("links", "attribution", "rewards", "notifications")
PROFILE_DIR = Path("test-output")


@dataclass
class Sampler:
    """CPU seconds and peak RSS of each service process (and CPU of Postgres and the broker),
    sampled in a thread; ``mark`` snapshots CPU so each phase gets its own split."""

    pids: dict[str, int]
    infra: dict[str, int]
    peak_rss: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def cpu(self) -> dict[str, float]:
        out = {s: tree_cpu(p) for s, p in self.pids.items()}
        out.update({s: tree_cpu(p) for s, p in self.infra.items()})
        return out

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in {**self.pids, **self.infra}.items():
                try:
                    rss = psutil.Process(pid).memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()


IDLE_WINDOW_S = 5.0


async def idle_cpu(sampler: Sampler, seconds: float) -> dict[str, float]:
    """Cores each process spends with no traffic at all: consumers' fetch polls and the
    services' timers. It is charged to the conversions of every phase, so it is printed apart;
    on Tansu, which does not wake long polls, it is most of the broker's cost."""
    before = sampler.cpu()
    await asyncio.sleep(seconds)
    after = sampler.cpu()
    return {n: (after[n] - before[n]) / seconds for n in after}


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _post(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await http.post(url, headers=headers, json=body)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"POST {url} -> {response.status_code}: {response.text[:300]}")
    return response.json()  # type: ignore[no-any-return]


async def setup_program(
    stack: Stack, http: httpx.AsyncClient, participants: int
) -> tuple[str, dict[str, str], list[str]]:
    links = stack.url("links")
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    program = await _post(
        http,
        f"{links}/v1/programs",
        admin,
        {
            "name": "pipeline bench",
            "definition": {
                "destination_url": "https://shop.example.com/",
                "rewards": {
                    "referrer": {"amount": 1000, "unit": "USD"},
                    "referee": {"amount": 1000, "unit": "USD"},
                },
                # One driver makes every signup: the per-referrer/IP velocity limits would flag it.
                "fraud": {
                    "velocity": {"action": "allow"},
                    "same_ip_or_device": {"action": "allow"},
                },
            },
        },
    )
    key = await _post(http, f"{links}/v1/programs/{program['id']}/keys", admin, {})
    server = {"Authorization": f"Bearer {key['secret_key']}"}
    codes = []
    for i in range(participants):
        p = await _post(
            http,
            f"{links}/v1/programs/{program['id']}/participants",
            server,
            {"external_user_id": f"bench-{i}"},
        )
        codes.append(p["code"])
    return program["id"], server, codes


async def wait_for_program(
    stack: Stack,
    attribution: list[str],
    http: httpx.AsyncClient,
    server: dict[str, str],
    codes: list[str],
) -> None:
    """The key and participants reach attribution through events; wait until every replica
    takes the key and every code is known (a signup with an unknown code waits for it rather
    than being attributed). On a fresh Kafka the consumer groups' first joins (and the offsets
    topic) take seconds, more on a crowded machine."""
    deadline = time.monotonic() + 120
    for base in attribution:
        url = f"{base}/v1/clicks/{uuid.uuid4()}"
        while (await http.get(url, headers=server)).status_code != 404:
            if time.monotonic() > deadline:
                raise TimeoutError("attribution never learned the program key")
            await asyncio.sleep(0.05)
    conn = await asyncpg.connect(database_url_for(stack.server_url, "attribution"))
    try:
        known = "SELECT count(*) FROM participants WHERE code = ANY($1::text[])"
        while await conn.fetchval(known, codes) < len(codes):
            if time.monotonic() > deadline:
                raise TimeoutError("attribution never learned every participant")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def signups(
    attribution: list[str], key: str, codes: list[str], customers: list[str], concurrency: int
) -> None:
    """Set-up, not measured: one attributed signup per journey."""
    http = RoundRobinHttp(attribution, concurrency, {"Authorization": f"Bearer {key}"})
    try:
        bodies = [
            {"customer_id": c, "referral_code": codes[i % len(codes)]}
            for i, c in enumerate(customers)
        ]
        for result in await post_all(http, "/v1/signups", bodies, concurrency):
            if not result["attributed"]:
                raise RuntimeError(f"signup not attributed: {result}")
    finally:
        await http.close()


async def wait_idle(stack: Stack, timeout_s: float = 300) -> None:
    """Until no outbox holds unsent events and no consumer applied anything for a second: the
    events of the set-up are handled before the measured phase starts."""
    conns = {s: await asyncpg.connect(database_url_for(stack.server_url, s)) for s in SERVICES}
    try:
        deadline = time.monotonic() + timeout_s
        last: tuple[int, ...] = ()
        while time.monotonic() < deadline:
            state = []
            for conn in conns.values():
                state.append(
                    await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                )
                state.append(await conn.fetchval("SELECT count(*) FROM processed_events"))
            if tuple(state) == last and not any(state[0::2]):
                return
            last = tuple(state)
            await asyncio.sleep(1.0)
        raise TimeoutError("the services did not become idle")
    finally:
        for conn in conns.values():
            await conn.close()


def conversion_bodies(customers: list[str]) -> list[dict[str, Any]]:
    return [
        {"customer_id": c, "order_id": f"o-{c}", "amount": 5000, "currency": "USD"}
        for c in customers
    ]


async def database_now(stack: Stack) -> datetime:
    """The database server's clock: a phase's rows are those written after it."""
    conn = await asyncpg.connect(database_url_for(stack.server_url, "attribution"))
    try:
        now: datetime = await conn.fetchval("SELECT now()")
        return now
    finally:
        await conn.close()


# The conversions of a phase are found by time, not by their thousand order ids: matching
# each row against an array of that size is quadratic, and this runs in the Postgres whose
# CPU the phase is charged. The bodies carry no ``occurred_at``, so ``converted_at`` is the
# time attribution received each one, after the phase began.
_PHASE_CONVERSIONS = "SELECT id, order_id, converted_at FROM conversions WHERE converted_at >= $1"
_PHASE_COUNT = "SELECT count(*) FROM conversions WHERE converted_at >= $1"


async def accepted_times(stack: Stack, customers: list[str], since: datetime) -> dict[str, float]:
    """Conversion id -> attribution's ``converted_at`` (epoch seconds) of these orders."""
    conn = await asyncpg.connect(database_url_for(stack.server_url, "attribution"))
    try:
        rows = await conn.fetch(_PHASE_CONVERSIONS, since)
    finally:
        await conn.close()
    orders = {f"o-{c}" for c in customers}
    return {str(r["id"]): r["converted_at"].timestamp() for r in rows if r["order_id"] in orders}


async def run_fixed(
    stack: Stack,
    attribution: list[str],
    key: str,
    customers: list[str],
    rate: float,
    concurrency: int,
) -> dict[str, Any]:
    since = await database_now(stack)
    since = await database_now(stack)
    http = RoundRobinHttp(attribution, concurrency, {"Authorization": f"Bearer {key}"})
    try:
        result = await paced(http, "/v1/conversions", conversion_bodies(customers), rate)
    finally:
        await http.close()
    offered = (len(customers) - 1) / max(result.sent_s, 1e-9)
    print(
        f"[fixed-rate] offered {offered:.1f}/s (asked {rate:g}/s); sent late (>10 ms or every "
        f"connection busy): {result.late}; driver HTTP p50="
        f"{quantile(result.http_ms, 0.5):.0f} ms p99={quantile(result.http_ms, 0.99):.0f} ms"
    )
    return {
        "accepted": await accepted_times(stack, customers, since),
        "since": since,
        "sent_s": result.sent_s,
        "label": "fixed-rate",
    }


async def run_full(
    stack: Stack,
    attribution: list[str],
    key: str,
    customers: list[str],
    threads: int,
    connections: int,
) -> dict[str, Any]:
    since = await database_now(stack)
    conn = await asyncpg.connect(database_url_for(stack.server_url, "attribution"))
    progress = [0, time.monotonic()]

    async def all_accepted() -> bool:
        n = await conn.fetchval(_PHASE_COUNT, since)
        if n != progress[0]:
            progress[:] = [n, time.monotonic()]
        elif time.monotonic() - progress[1] > 30:
            print(f"[full-speed] stalled at {n} of {len(customers)} conversions accepted")
            return True
        return bool(n >= len(customers))

    started = time.perf_counter()
    try:
        summaries = await wrk_conversions(
            attribution,
            key,
            conversion_bodies(customers),
            threads,
            connections,
            all_accepted,
        )
    finally:
        await conn.close()
    sent_s = time.perf_counter() - started
    for i, summary in enumerate(summaries):
        print(f"[full-speed] {replica_label('attribution', i, len(summaries))} {summary}")
    return {
        "accepted": await accepted_times(stack, customers, since),
        "since": since,
        "sent_s": sent_s,
        "label": "full-speed",
    }


async def settle(
    stack: Stack, accepted: dict[str, float], since: datetime, timeout_s: float
) -> tuple[dict[str, datetime], dict[str, datetime], int]:
    """Wait for the rewards and notifications of these conversions; return their times.

    The wait polls two counts; the times are read once at the end. Its queries run in the
    Postgres whose CPU the phase is charged, so they are kept to a few index lookups."""
    ids = [uuid.UUID(c) for c in accepted]
    rewards_db = await asyncpg.connect(database_url_for(stack.server_url, "rewards"))
    notes_db = await asyncpg.connect(database_url_for(stack.server_url, "notifications"))
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            issued = await rewards_db.fetchval(
                "SELECT count(*) FROM rewards WHERE side = 'referrer' AND created_at >= $1",
                since,
            )
            notes = await notes_db.fetchval(
                "SELECT count(*) FROM notifications WHERE kind = 'reward_issued' "
                "AND created_at > $1",
                since,
            )
            # Counts since the phase began: enough of them is only a reason to look.
            if issued >= len(ids) and notes >= len(ids):
                found = await _settled(rewards_db, notes_db, ids, since)
                if len(found[0]) == len(ids) and len(found[1]) == len(ids):
                    return found
            await asyncio.sleep(0.2)
        return await _settled(rewards_db, notes_db, ids, since)
    finally:
        await rewards_db.close()
        await notes_db.close()


async def _settled(
    rewards_db: asyncpg.Connection,
    notes_db: asyncpg.Connection,
    ids: list[uuid.UUID],
    since: datetime,
) -> tuple[dict[str, datetime], dict[str, datetime], int]:
    """Each conversion's referrer reward and message times, and how many were duplicated."""
    rows = await rewards_db.fetch(
        "SELECT conversion_id, id, side, created_at FROM rewards "
        "WHERE conversion_id = ANY($1::uuid[])",
        ids,
    )
    issued = {str(r["conversion_id"]): r["created_at"] for r in rows if r["side"] == "referrer"}
    referrer_rewards = {
        str(r["id"]): str(r["conversion_id"]) for r in rows if r["side"] == "referrer"
    }
    duplicated = len(rows) - len({(r["conversion_id"], r["side"]) for r in rows})
    notes = await notes_db.fetch(
        "SELECT event_id, created_at FROM notifications WHERE kind = 'reward_issued' "
        "AND created_at > $1",
        since,
    )
    # The feed row's event id is the reward.issued event; map it back through rewards'
    # outbox (which holds the reward id in the payload).
    outbox = await rewards_db.fetch(
        "SELECT event_id, convert_from(payload, 'UTF8')::jsonb->>'reward_id' AS reward "
        "FROM outbox WHERE topic = 'reward.issued' AND event_id = ANY($1::uuid[])",
        [n["event_id"] for n in notes],
    )
    reward_of_event = {str(o["event_id"]): o["reward"] for o in outbox}
    notified: dict[str, datetime] = {}
    for n in notes:
        conversion = referrer_rewards.get(reward_of_event.get(str(n["event_id"]), ""))
        if conversion is not None:
            if conversion in notified:
                duplicated += 1
            notified[conversion] = n["created_at"]
    return issued, notified, duplicated


def report(
    phase: dict[str, Any],
    issued: dict[str, datetime],
    notified: dict[str, datetime],
    duplicated: int,
) -> dict[str, float]:
    accepted: dict[str, float] = phase["accepted"]
    reward_ms = [
        max(0.0, (issued[c].timestamp() - t) * 1000) for c, t in accepted.items() if c in issued
    ]
    notify_ms = [
        max(0.0, (notified[c].timestamp() - t) * 1000) for c, t in accepted.items() if c in notified
    ]
    first = min(accepted.values())
    last = max((ts.timestamp() for ts in issued.values()), default=first)
    rate = len(issued) / max(last - first, 1e-9)
    lost = len(accepted) - len(issued)
    print(
        f"[{phase['label']}] {len(accepted)} conversions sent in {phase['sent_s']:.1f}s; "
        f"sustained {rate:.0f}/s to rewards issued"
    )
    for name, values in (("reward", reward_ms), ("notify", notify_ms)):
        print(
            f"[{phase['label']}] accepted -> {name}: p50={quantile(values, 0.5):.0f} ms "
            f"p95={quantile(values, 0.95):.0f} ms p99={quantile(values, 0.99):.0f} ms "
            f"(n={len(values)})"
        )
    print(
        f"[{phase['label']}] lost={lost} duplicated={duplicated} "
        f"not_notified={len(accepted) - len(notified)}"
    )
    return {
        "rate": rate,
        "p99_reward": quantile(reward_ms, 0.99),
        "p99_notify": quantile(notify_ms, 0.99),
        "lost": lost,
        "duplicated": duplicated + (len(accepted) - len(notified)),
    }


def start_profiler(pid: int, service: str) -> subprocess.Popen[bytes]:
    """py-spy samples the service while the full-speed phase runs (``--profile SERVICE``)."""
    out = PROFILE_DIR / f"profile-{service}.txt"
    PROFILE_DIR.mkdir(exist_ok=True)
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def print_profile(service: str, top: int = 12) -> None:
    """From py-spy's collapsed stacks: the project's own functions by inclusive share, and the
    functions where the samples end (self time), wherever they live."""
    path = PROFILE_DIR / f"profile-{service}.txt"
    if not path.exists():
        print(f"no profile written for {service} (is py-spy installed?)")
        return
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf[_frame_name(frames[-1])] += n
        for frame in set(frames):
            if "(services/" in frame or "(shared/" in frame:
                inclusive[_frame_name(frame)] += n
    print(f"profile of {service}: {total} samples")
    print("  project functions, inclusive:")
    for frame, n in inclusive.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {frame}")
    print("  where time is spent (self):")
    for frame, n in leaf.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {frame}")


def _frame_name(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name} {where.rstrip(')').rsplit('/', 1)[-1]}"


def print_cpu(label: str, before: dict[str, float], after: dict[str, float], n: int) -> None:
    used = {name: after[name] - before[name] for name in after}
    parts = [f"{name}={s:.1f}s ({s * 1000 / n:.1f} ms/conv)" for name, s in used.items()]
    print(f"[{label}] cpu: " + ", ".join(parts))
    # The machine may be shared: the load says how much of it these processes could get.
    print(f"[{label}] machine load average (1 min) at the end: {os.getloadavg()[0]:.1f}")


def infra_pids(stack: Stack) -> dict[str, int]:
    """Postgres and the broker processes: Tansu's, or each Kafka node's JVM."""
    infra = {}
    if stack.postgres is not None:
        pm = (stack.postgres.data_dir / "postmaster.pid").read_text().split()[0]
        infra["postgres"] = int(pm)
    if stack.broker is not None and stack.broker.pid is not None:
        infra["tansu"] = stack.broker.pid
    if stack.kafka is not None:
        for node in stack.kafka.nodes:
            if node.pid is not None:
                infra[f"kafka-{node.node_id}"] = node.pid
    return infra


async def main_async(
    args: argparse.Namespace, root: Path, broker: BrokerKind, replicas: int, run: str
) -> dict[str, Any]:
    suffix = f", replicas: {replicas}" if replicas > 1 else ""
    print(f"=== broker: {broker}{suffix} ===", flush=True)
    config = StackConfig.for_tests(root)
    config.broker = broker
    config.kafka_quick_jvm = False  # measure Kafka as it runs, not as it starts
    config.pg_settings = dict(PG_SETTINGS)
    if args.fetch_wait_ms is not None:
        # The consumers' fetch wait: the embedded broker does not wake long polls, so it is
        # both the idle poll rate (broker CPU) and up to that much latency per hop.
        config.extra_env["KAFKA_FETCH_MAX_WAIT_MS"] = str(args.fetch_wait_ms)
    stack = Stack(config)
    services = ServiceReplicas(stack, root, replicas)
    try:
        stack.start_infra()
        await stack.prepare()
        await services.start()
        counting = await prepare(stack.server_url)
        if counting:
            # From here on the benchmark's own queries run as its role, counted apart (the
            # services got their database URLs when they started).
            stack.server_url = as_bench(stack.server_url)
        databases = {s: urlsplit(database_url_for(stack.server_url, s)).path[1:] for s in SERVICES}
        service_urls = {s: [r.url for r in services.live[s]] for s in SERVICES}
        attribution = service_urls["attribution"]
        labelled = {
            replica_label(s, i, replicas): r
            for s in SERVICES
            for i, r in enumerate(services.live[s])
        }
        replica_urls = {name: r.url for name, r in labelled.items()}

        async def work_now() -> Work:
            await asyncio.sleep(2)  # backends report their transactions when idle
            return await snapshot(stack.server_url, databases, service_urls)

        ceiling = await asyncio.to_thread(
            wrk_baseline, f"{attribution[0]}/healthz", 3, 2, args.concurrency
        )
        print(f"baseline: wrk -> attribution /healthz {ceiling:.0f} req/s")
        async with httpx.AsyncClient(timeout=30) as http:
            _, server, codes = await setup_program(stack, http, args.participants)
            await wait_for_program(stack, attribution, http, server, codes)
        key = server["Authorization"].removeprefix("Bearer ")
        tag = uuid.uuid4().hex[:6]
        customers = {
            label: [f"{label}-{tag}-{i}" for i in range(args.journeys)]
            for label in ("fixed-rate", "full-speed")
        }
        started = time.perf_counter()
        await signups(
            attribution,
            key,
            codes,
            customers["fixed-rate"] + customers["full-speed"],
            args.concurrency,
        )
        print(
            f"set-up: {2 * args.journeys} signups in {time.perf_counter() - started:.1f}s; "
            "waiting until the services are idle"
        )
        await wait_idle(stack)
        sampler = Sampler({name: r.proc.pid for name, r in labelled.items()}, infra_pids(stack))
        sampler.start()
        idle = await idle_cpu(sampler, IDLE_WINDOW_S)
        print(
            f"[idle] cpu with no traffic ({IDLE_WINDOW_S:.0f} s): "
            + ", ".join(f"{n}={v:.0%}" for n, v in idle.items())
            + f"; all={sum(idle.values()):.2f} cores"
        )
        results = {}
        cpu_at_start: dict[str, dict[str, float]] = {}
        cpu_at_end: dict[str, dict[str, float]] = {}
        work: dict[str, dict[str, dict[str, float]]] = {}
        spread_lines: list[str] = []
        locks = LockWaits()
        for label in ("fixed-rate", "full-speed"):
            profilers = []
            if label == "full-speed":
                for service in args.profile or ():
                    pid = services.live[service][0].proc.pid
                    profilers.append((service, start_profiler(pid, service)))
            work_before = await work_now() if counting else None
            events_before = await replica_events(replica_urls)
            stop_sampling = asyncio.Event()
            sampling = asyncio.create_task(sample_lock_waits(stack.server_url, stop_sampling))
            cpu_before = sampler.cpu()
            cpu_at_start[label] = cpu_before
            try:
                if label == "fixed-rate":
                    phase = await run_fixed(
                        stack, attribution, key, customers[label], args.rate, args.concurrency
                    )
                else:
                    phase = await run_full(
                        stack,
                        attribution,
                        key,
                        customers[label],
                        args.wrk_threads,
                        args.concurrency,
                    )
                issued, notified, duplicated = await settle(
                    stack, phase["accepted"], phase["since"], 300
                )
                cpu_at_end[label] = sampler.cpu()
            finally:
                stop_sampling.set()
                locks = await sampling
            print_cpu(label, cpu_before, cpu_at_end[label], args.journeys)
            if work_before is not None:
                spent = (await work_now()).minus(work_before)
                work[label] = print_work(label, spent, args.journeys, args.statements)
            spread_lines = print_spread(
                label, spread(events_before, await replica_events(replica_urls))
            )
            print(
                f"[{label}] lock waits in Postgres (pg_stat_activity every 50 ms, "
                f"{locks.samples} samples over {locks.seconds:.1f}s): "
                f"{locks.summary(list(databases.values()))}"
            )
            for service, profiler in profilers:
                profiler.send_signal(signal.SIGINT)
                await asyncio.to_thread(profiler.wait, 30)
                print_profile(service)
            results[label] = report(phase, issued, notified, duplicated)
            if label == "fixed-rate":
                await wait_idle(stack)
        sampler.stop()
        for name, rss in sampler.peak_rss.items():
            print(f"{name:<15} peak_rss={rss / 2**20:.0f} MiB")
        full, fixed = results["full-speed"], results["fixed-rate"]
        print(
            f"ratio: full-speed conversions/s over the /healthz baseline = "
            f"{full['rate'] / ceiling:.3f}"
        )
        start, end = cpu_at_start["full-speed"], cpu_at_end["full-speed"]
        cpu_ms = {n: (end[n] - start[n]) * 1000 / args.journeys for n in end}
        print(
            f"pipeline: conversions_per_s={full['rate']:.0f} "
            f"p99_reward_ms={fixed['p99_reward']:.0f} p99_notify_ms={fixed['p99_notify']:.0f} "
            f"lost={full['lost'] + fixed['lost']} "
            f"duplicated={full['duplicated'] + fixed['duplicated']} "
            f"ratio={full['rate'] / ceiling:.3f} "
            f"cpu_ms_per_conversion={sum(cpu_ms.values()):.1f}"
        )
        return {
            "label": run,
            "rate": full["rate"],
            "p99_reward": fixed["p99_reward"],
            "p99_notify": fixed["p99_notify"],
            "lost": full["lost"] + fixed["lost"],
            "duplicated": full["duplicated"] + fixed["duplicated"],
            "ratio": full["rate"] / ceiling,
            "cpu_ms": cpu_ms,
            "work": work.get("full-speed", {}),
            "spread": spread_lines,
            "lock_waits": locks.summary(list(databases.values())),
            "idle_cores": sum(idle.values()),
            "rss_mib": {n: rss / 2**20 for n, rss in sampler.peak_rss.items()},
            "broker_start_s": stack.kafka.startup_seconds if stack.kafka else None,
        }
    finally:
        services.stop()
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1000)
    parser.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="offered conversions per second in the fixed-rate phase",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="connections of the drivers")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument(
        "--fetch-wait-ms",
        type=int,
        help="KAFKA_FETCH_MAX_WAIT_MS of the services (default: the dev stack's)",
    )
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument(
        "--statements",
        type=int,
        default=0,
        metavar="N",
        help="also print each service's N statements that took Postgres the most time "
        "(calls and execution ms per conversion)",
    )
    parser.add_argument(
        "--profile",
        choices=SERVICES,
        action="append",
        help="sample this service (its first replica) with py-spy during the full-speed phase "
        "(repeatable)",
    )
    parser.add_argument(
        "--broker",
        default="tansu",
        help="tansu, kafka or kafka-cluster; a comma list (tansu,kafka) runs each in turn and "
        "prints their lines side by side",
    )
    parser.add_argument(
        "--replicas",
        default="1",
        help="processes of every service (consumer-group members sharing the partitions); a "
        "comma list (1,2) runs each count in turn and prints their lines side by side",
    )
    args = parser.parse_args()
    brokers = [broker_kind(b) for b in args.broker.split(",")]
    try:
        counts = parse_counts(args.replicas)
    except ValueError as exc:
        parser.error(str(exc))
    outcomes = []
    for broker in brokers:
        for replicas in counts:
            root = Path(tempfile.mkdtemp(prefix="refplat-bench-"))
            root.chmod(0o755)  # the embedded Postgres may run as another user
            run = run_label(broker, replicas, counts)
            outcomes.append(asyncio.run(main_async(args, root, broker, replicas, run)))
    print_side_by_side(outcomes)


def print_side_by_side(outcomes: list[dict[str, Any]]) -> None:
    """One line per run (broker, replicas): throughput and latency, then CPU (full-speed phase,
    ms per conversion) and peak memory of every process, the broker's own JVMs included, the
    events each replica consumed and the lock waits of the full-speed phase."""
    print("\n=== side by side (same machine, same run) ===")
    for o in outcomes:
        tag = f"pipeline[{o['label']}]:"
        started = f" started_in={o['broker_start_s']:.0f}s" if o["broker_start_s"] else ""
        print(
            f"{tag} conversions_per_s={o['rate']:.0f} "
            f"p99_reward_ms={o['p99_reward']:.0f} p99_notify_ms={o['p99_notify']:.0f} "
            f"lost={o['lost']} duplicated={o['duplicated']} ratio={o['ratio']:.3f} "
            f"cpu_ms_per_conversion={sum(o['cpu_ms'].values()):.1f} "
            f"idle_cores={o['idle_cores']:.2f}{started}"
        )
        cpu = " ".join(f"{n}={v:.1f}" for n, v in o["cpu_ms"].items())
        rss = " ".join(f"{n}={v:.0f}" for n, v in o["rss_mib"].items())
        print(f"{tag} cpu_ms_per_conversion {cpu}")
        print(f"{tag} peak_rss_mib {rss}")
        for line in o["spread"]:
            print(f"{tag} events_consumed {line}")
        print(f"{tag} lock_wait_s {o['lock_waits']}")
        for service, row in o["work"].items():
            figures = " ".join(f"{k}={v:.1f}" for k, v in row.items())
            print(f"{tag} work_per_conversion {service} {figures}")


if __name__ == "__main__":
    main()
