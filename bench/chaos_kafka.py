"""Failover chaos on a three-node Apache Kafka cluster: referral journeys and clicks flow through
two replicas of every service while brokers fail; then the system settles and the same
invariants as the embedded-broker run are checked, with **no replay**: on replicated Kafka
(replication 3, min.insync.replicas 2, acks=all, idempotent producers) nothing acknowledged may
be lost.

Faults, each kind at least once per seed, in an order drawn from the seed:
- ``kill_leader``: SIGKILL of the broker leading the busiest partition, restarted after a few
  seconds;
- ``kill_controller``: SIGKILL of the active KRaft controller (every node is broker and
  controller), restarted after a few seconds;
- ``pause_broker``: SIGSTOP of one broker for longer than the consumers' and the broker's
  session timeouts, then SIGCONT;
- ``roll_brokers``: a rolling restart of the three brokers (SIGTERM, start, wait until no
  partition is under-replicated, next);
- ``roll_services``: a rolling restart of every service, two replicas each, as a Kubernetes
  rollout does it (bench/replicas.py).
After each fault the run waits until the cluster is whole again and prints how long each
consumer group took to resume (bench/chaos_kafka_probe.py says how that is measured).

Invariants, besides those of bench/chaos.py (exact rewards, balanced ledger, one notification
per issued referrer reward, empty outboxes, DLQs holding exactly the injected messages):
- caps held: each referrer's rewards add up to exactly min(cap, conversions x amount);
- every click answered with a redirect reached attribution's ``clicks`` table, once;
- every consumer group resumed after every fault, and the cluster became whole again.

    python -m bench.chaos --broker kafka-cluster [--seeds N] [--first-seed S] [--faults F]
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import fcntl
import logging
import random
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.chaos import (
    REWARD_AMOUNT,
    ChaosResult,
    _check,
    _inject_malformed,
    _retrying,
    _wait_dead_lettered,
    chaos_program,
    wait_attribution_knows,
)
from bench.chaos_broker import DeadLetterWatcher
from bench.chaos_kafka_probe import GROUPS, ClusterProbe, active_controller
from bench.replicas import ServiceReplicas
from devstack.kafka import KafkaCluster
from devstack.kafka.cluster import QUICK_JVM
from devstack.stack import Stack, StackConfig, database_url_for
from shared.contracts import LinkClicked, ReferralConverted, RewardIssued
from shared.messaging.producer import all_topics
from shared.settings import ServiceSettings

KINDS = ("kill_leader", "kill_controller", "pause_broker", "roll_brokers", "roll_services")
# The partition whose leader kill_leader hits is the busiest of these.
BUSY_TOPICS = {LinkClicked.TOPIC, ReferralConverted.TOPIC, RewardIssued.TOPIC}
PARTITIONS, REPLICATION, MIN_INSYNC = 6, 3, 2
REFERRERS = 5
CAP_REWARDS = 8  # referrer rewards each referrer may get in full; the rest are capped
# Kafka's broker.session.timeout.ms default: a silent broker is fenced (its leaderships move)
# after it. A pause lasts longer than this and than the consumers' session timeout.
BROKER_SESSION_TIMEOUT_MS = 9000
# A JVM start on a loaded two-core machine can take minutes.
NODE_START_TIMEOUT_S = 600


@dataclass(frozen=True)
class ClusterFault:
    kind: str
    delay_s: float  # after the previous fault
    down_s: float = 0.0  # kills: until the restart; pause: beyond the session timeout
    node_pick: int = 0  # pause_broker: which node; roll_brokers: which node goes first


def plan(seed: int, count: int) -> list[ClusterFault]:
    """Every kind once in a seeded order, then ``count - 5`` more drawn at random."""
    rng = random.Random(f"cluster-faults-{seed}")
    kinds = list(KINDS)
    rng.shuffle(kinds)
    kinds += [rng.choice(KINDS) for _ in range(max(0, count - len(KINDS)))]
    return [
        ClusterFault(kind, rng.uniform(0.5, 2.0), rng.uniform(1.0, 5.0), rng.randrange(3))
        for kind in kinds
    ]


@dataclass
class FaultReport:
    what: str
    took_s: float
    resume_s: dict[str, float | None]  # group -> worst resume time over the fault's steps
    healed_s: float = 0.0  # after the fault, until the cluster was whole again

    def line(self) -> str:
        return (
            f"fault: {self.what} [{self.took_s:.1f}s, whole again +{self.healed_s:.1f}s]\n"
            f"    resume: {format_resume(self.resume_s)}"
        )


@dataclass
class ClusterChaosResult(ChaosResult):
    reports: list[FaultReport] = field(default_factory=list)
    clicks_answered: int = 0
    clicks_stored: int = 0
    seconds: float = 0.0
    # Kafka consumers their supervisor replaced, by reason (shared/messaging/consumer.py).
    restarts: collections.Counter[str] = field(default_factory=collections.Counter)


Resumed = dict[str, float | None]  # consumer group -> resume time, None: never


def _worst(a: Resumed, b: Resumed) -> Resumed:
    out = dict(a)
    for group, seconds in b.items():
        if group not in out:
            out[group] = seconds
        elif seconds is None or out[group] is None:
            out[group] = None
        else:
            out[group] = max(out[group] or 0.0, seconds)
    return out


class Faults:
    """The five fault kinds against one cluster and one set of service replicas. Each returns
    what it did and, per consumer group, the worst resume time over its steps."""

    def __init__(
        self,
        cluster: KafkaCluster,
        replicas: ServiceReplicas,
        probe: ClusterProbe,
        session_timeout_s: float,
    ) -> None:
        self.cluster = cluster
        self.replicas = replicas
        self.probe = probe
        self.session_timeout_s = session_timeout_s
        self.violations: list[str] = []

    async def _struck(self, recover: Awaitable[object]) -> dict[str, float | None]:
        """The fault struck just now: measure the groups' resume while ``recover`` runs."""
        struck = time.monotonic()
        resumed, _ = await asyncio.gather(self.probe.resume_times(struck), recover)
        return resumed

    async def _restart(self, node_id: int, after_s: float) -> None:
        await asyncio.sleep(after_s)
        await asyncio.to_thread(self.cluster.start_node, node_id, NODE_START_TIMEOUT_S)

    async def kill_leader(self, fault: ClusterFault) -> tuple[str, Resumed]:
        tp, leader = await self.probe.busiest(BUSY_TOPICS)
        await asyncio.to_thread(self.cluster.kill, leader)
        resumed = await self._struck(self._restart(leader, fault.down_s))
        what = f"SIGKILL node {leader} (leader of {tp.topic}-{tp.partition})"
        return f"{what}, restarted after {fault.down_s:.1f}s", resumed

    async def kill_controller(self, fault: ClusterFault) -> tuple[str, Resumed]:
        controller = active_controller(self.cluster)
        await asyncio.to_thread(self.cluster.kill, controller)
        resumed = await self._struck(self._restart(controller, fault.down_s))
        what = f"SIGKILL node {controller} (active controller)"
        return f"{what}, restarted after {fault.down_s:.1f}s", resumed

    async def pause_broker(self, fault: ClusterFault) -> tuple[str, Resumed]:
        node_id = self.cluster.nodes[fault.node_pick % len(self.cluster.nodes)].node_id
        paused = self.session_timeout_s + fault.down_s

        async def hold() -> None:
            try:
                await asyncio.sleep(paused)
            finally:
                self.cluster.resume(node_id)

        self.cluster.pause(node_id)
        resumed = await self._struck(hold())
        return f"SIGSTOP node {node_id} for {paused:.1f}s, then SIGCONT", resumed

    async def roll_brokers(self, fault: ClusterFault) -> tuple[str, Resumed]:
        ids = [n.node_id for n in self.cluster.nodes]
        order = ids[fault.node_pick :] + ids[: fault.node_pick]
        worst: Resumed = {}

        async def step(node_id: int) -> None:
            await asyncio.to_thread(self.cluster.stop_node, node_id)
            await asyncio.to_thread(self.cluster.start_node, node_id, NODE_START_TIMEOUT_S)
            await self.probe.wait_healthy(len(ids))

        for node_id in order:
            worst = _worst(worst, await self._struck(step(node_id)))
        names = ", ".join(map(str, order))
        return f"rolling restart of brokers {names} (SIGTERM, start, back in sync)", worst

    async def roll_services(self, fault: ClusterFault) -> tuple[str, Resumed]:
        """A deploy of every service at once, each Deployment rolling on its own: per step, a
        new replica of each service, then the old one of each leaves (SIGTERM)."""
        worst: Resumed = {}
        exits: list[float] = []
        steps = max(len(r) for r in self.replicas.live.values())
        for _ in range(steps):
            olds = [r[0] for r in self.replicas.live.values()]
            await asyncio.gather(*(self.replicas.surge(old.service) for old in olds))
            struck = time.monotonic()
            resumed, *retired = await asyncio.gather(
                self.probe.resume_times(struck), *(self.replicas.retire(old) for old in olds)
            )
            worst = _worst(worst, resumed)
            for old, (took, code) in zip(olds, retired, strict=True):
                exits.append(took)
                # uvicorn re-raises the SIGTERM it handled once it has shut down: -15 is a
                # graceful exit too; -9 means the grace period ran out.
                if code not in (0, -signal.SIGTERM):
                    self.violations.append(f"{old.name} exited with {code} on SIGTERM")
        return (
            f"rolling restart of all services, {len(exits)} replicas replaced (SIGTERM exits "
            f"took {min(exits):.1f}-{max(exits):.1f}s)",
            worst,
        )


def _start_cluster(cluster: KafkaCluster) -> None:
    """One cluster starts at a time on this machine (seeds run in parallel): twelve JVMs
    formatting and starting at once overrun the launcher's timeouts on two cores. A start
    that times out anyway is tried once more."""
    lock = Path(tempfile.gettempdir()) / "refplat-chaos-kafka-start.lock"
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            cluster.start(timeout_s=NODE_START_TIMEOUT_S)
        except (TimeoutError, subprocess.TimeoutExpired, RuntimeError):
            cluster.stop()
            cluster.start(timeout_s=NODE_START_TIMEOUT_S)


def _restart_stopped(cluster: KafkaCluster) -> None:
    """Bring back any node a broken fault left paused or down."""
    for node in cluster.nodes:
        if node.running:
            with contextlib.suppress(RuntimeError, ProcessLookupError):
                cluster.resume(node.node_id)
        else:
            cluster.start_node(node.node_id, NODE_START_TIMEOUT_S)


async def create_topics(bootstrap: str, partitions: int = PARTITIONS) -> None:
    """Every topic and DLQ twin as production has them, before the services start (they would
    create missing ones with their own settings)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        config = {"min.insync.replicas": str(MIN_INSYNC)}
        await admin.create_topics(
            [NewTopic(t, partitions, REPLICATION, topic_configs=config) for t in all_topics()]
        )
    finally:
        await admin.close()


async def _journeys(
    replicas: ServiceReplicas,
    http: httpx.AsyncClient,
    server: dict[str, str],
    codes: list[str],
    rng: random.Random,
    accepted: list[str],
    stop: asyncio.Event,
    rate_per_s: float,
) -> None:
    def attribution() -> str:
        return replicas.url("attribution")

    while not stop.is_set():
        customer = f"chaos-{uuid.uuid4().hex[:10]}"
        code = codes[rng.randrange(len(codes))]
        await _retrying(
            http,
            "POST",
            lambda: f"{attribution()}/v1/signups",
            headers={**server, "Idempotency-Key": f"s-{customer}"},
            json={"customer_id": customer, "referral_code": code},
        )
        result = await _retrying(
            http,
            "POST",
            lambda: f"{attribution()}/v1/conversions",
            headers={**server, "Idempotency-Key": f"c-{customer}"},
            json={
                "customer_id": customer,
                "order_id": f"o-{customer}",
                "amount": 1500 + len(accepted),
                "currency": "USD",
            },
        )
        accepted.append(result["conversion_id"])
        await asyncio.sleep(1 / rate_per_s)


async def _clicks(
    replicas: ServiceReplicas,
    http: httpx.AsyncClient,
    codes: list[str],
    rng: random.Random,
    stop: asyncio.Event,
    answered: list[int],
) -> None:
    """Five clicks every half second; counts those answered with a redirect."""
    headers = {"User-Agent": "Mozilla/5.0"}
    while not stop.is_set():
        urls = [f"{replicas.url('links')}/r/{codes[rng.randrange(len(codes))]}" for _ in range(5)]
        responses = await asyncio.gather(
            *(http.get(u, headers=headers) for u in urls), return_exceptions=True
        )
        answered[0] += sum(
            1 for r in responses if isinstance(r, httpx.Response) and r.status_code == 302
        )
        await asyncio.sleep(0.5)


async def _stored_clicks(db: asyncpg.Connection, want: int, timeout_s: float = 180) -> int:
    """Clicks in attribution's table once they reach ``want``, or at the timeout: a loaded
    machine can pause the click consumers for many seconds, so no early stop on a plateau."""
    deadline = time.monotonic() + timeout_s
    while True:
        stored = int(await db.fetchval("SELECT count(*) FROM clicks"))
        if stored >= want or time.monotonic() > deadline:
            return stored
        await asyncio.sleep(0.5)


async def _check_caps_and_clicks(
    stack: Stack, result: ClusterChaosResult, accepted: list[str], cap: int
) -> None:
    rewards = await asyncpg.connect(database_url_for(stack.server_url, "rewards"))
    attribution = await asyncpg.connect(database_url_for(stack.server_url, "attribution"))
    try:
        rows = await rewards.fetch(
            "SELECT referrer_id, count(*) AS n, sum(amount) AS total FROM rewards "
            "WHERE side = 'referrer' AND conversion_id = ANY($1::uuid[]) GROUP BY referrer_id",
            [uuid.UUID(c) for c in accepted],
        )
        wrong = [r for r in rows if r["total"] != min(cap, r["n"] * REWARD_AMOUNT)]
        if wrong:
            result.violations.append(
                "caps: "
                + ", ".join(f"{r['n']} conversions gave {r['total']} (cap {cap})" for r in wrong)
            )
        result.clicks_stored = await _stored_clicks(attribution, result.clicks_answered)
        if result.clicks_stored != result.clicks_answered:
            result.violations.append(
                f"{result.clicks_answered} clicks answered, {result.clicks_stored} stored"
            )
    finally:
        await rewards.close()
        await attribution.close()


async def cluster_chaos_run(
    seed: int,
    *,
    faults: int,
    root: Path,
    rate_per_s: float = 3.0,
    per_service: int = 2,
    partitions: int = PARTITIONS,
    progress: bool = False,
) -> ClusterChaosResult:
    """One seed's run. ``partitions`` per topic (DLQ twins too): a node restart loads and, after
    a SIGKILL, recovers every one of them, so fewer keep a short run short."""
    rng = random.Random(f"journeys-{seed}")
    result = ClusterChaosResult(seed)
    # A node restart is CPU-bound (docs/architecture.md, "Restarting a Kafka node"): with the
    # default collector and both JIT compilers it cost the restarted node some 25 CPU-seconds and
    # each other node 12-20, which a crowded two-core machine stretched to three minutes. The
    # client compiler and the serial collector cost 40% less on the restarted node and two thirds
    # less on the others; broker throughput is not what this run measures.
    cluster = KafkaCluster(root / "kafka", size=3, jvm_options=QUICK_JVM)
    replicas: ServiceReplicas | None = None
    probe: ClusterProbe | None = None
    stack: Stack | None = None
    stop_watching, stop_traffic = asyncio.Event(), asyncio.Event()
    background: list[asyncio.Task[None]] = []
    try:
        await asyncio.to_thread(_start_cluster, cluster)
        probe = ClusterProbe(cluster.bootstrap_servers)
        await probe.start()
        await probe.wait_healthy(len(cluster.nodes))
        await create_topics(cluster.bootstrap_servers, partitions)
        config = StackConfig.for_tests(root)
        config.kafka_bootstrap_servers = cluster.bootstrap_servers
        config.extra_env.update(
            KAFKA_TOPIC_PARTITIONS=str(partitions),
            KAFKA_REPLICATION_FACTOR=str(REPLICATION),
            # Every click comes from 127.0.0.1: lift the per-address limit.
            REDIRECT_RATE_PER_S="100000",
            REDIRECT_BURST="100000",
        )
        stack = Stack(config)
        stack.start_infra()
        await stack.prepare()
        replicas = ServiceReplicas(stack, root, per_service)
        await replicas.start()
        default_ms = ServiceSettings.model_fields["kafka_session_timeout_ms"].default
        session_ms = int(stack.service_env("rewards").get("KAFKA_SESSION_TIMEOUT_MS", default_ms))
        session_timeout_s = max(session_ms, BROKER_SESSION_TIMEOUT_MS) / 1000
        watcher = DeadLetterWatcher(cluster.bootstrap_servers)
        background.append(asyncio.create_task(watcher.run(stop_watching)))
        admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
        cap = CAP_REWARDS * REWARD_AMOUNT
        async with httpx.AsyncClient(timeout=10) as http:
            links = replicas.url("links")
            program, server = await chaos_program(http, links, admin, f"chaos {seed}", cap)
            codes = []
            for i in range(REFERRERS):
                p = await _retrying(
                    http,
                    "POST",
                    f"{links}/v1/programs/{program['id']}/participants",
                    headers=server,
                    json={"external_user_id": f"c{seed}-{i}"},
                )
                codes.append(p["code"])
            await wait_attribution_knows(stack, codes)
            accepted: list[str] = []
            answered = [0]
            background.append(
                asyncio.create_task(
                    _journeys(
                        replicas, http, server, codes, rng, accepted, stop_traffic, rate_per_s
                    )
                )
            )
            background.append(
                asyncio.create_task(_clicks(replicas, http, codes, rng, stop_traffic, answered))
            )
            result.injected_ids = await _inject_malformed(stack, 1 + seed % 3)
            if not await _wait_dead_lettered(watcher, result.injected_ids, timeout_s=60):
                result.violations.append("injected malformed messages were not dead-lettered")
            chaos = Faults(cluster, replicas, probe, session_timeout_s)
            for fault in plan(seed, faults):
                await asyncio.sleep(fault.delay_s)
                began = time.monotonic()
                try:
                    what, resumed = await getattr(chaos, fault.kind)(fault)
                except Exception as e:  # the fault or its measurement broke: heal, go on
                    what, resumed = f"{fault.kind} (not completed)", {}
                    result.violations.append(f"{fault.kind} not completed: {e!r}"[:300])
                    await asyncio.to_thread(_restart_stopped, cluster)
                took = time.monotonic() - began
                try:
                    healed = await probe.wait_healthy(len(cluster.nodes))
                except TimeoutError as e:
                    healed = float("nan")
                    result.violations.append(f"after {fault.kind}: {e}")
                report = FaultReport(what, took, resumed, healed)
                result.reports.append(report)
                if progress:
                    print(f"  seed {seed} {report.line()}", flush=True)
                result.kinds.append(fault.kind)
                result.faults.append(what)
                result.violations += chaos.violations
                chaos.violations.clear()
                stalled = [g for g, s in resumed.items() if s is None]
                if stalled:
                    result.violations.append(f"after {fault.kind}: groups {stalled} never resumed")
            stop_traffic.set()
            result.accepted = len(accepted)
            for task in background[1:]:
                await task
            result.accepted = len(accepted)
            result.clicks_answered = answered[0]
            await _check(stack, result, accepted, watcher)
            await _check_caps_and_clicks(stack, result, accepted, cap)
    except Exception as e:  # a crashed run is a violation; what it saw so far is kept
        result.violations.append(f"run failed: {e!r}"[:400])
    finally:
        stop_traffic.set()
        stop_watching.set()
        for task in background:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)
        if probe is not None:
            await probe.close()
        if replicas is not None:
            replicas.stop()
        if stack is not None:
            stack.stop()
        cluster.stop()
        result.restarts = supervisor_restarts(root / "logs")
    return result


# What the consumer supervisor logs when it replaces a Kafka consumer, by reason.
_SUPERVISOR_LINES = {
    "stalled": "has not turned for",
    "cancelled": "a cancellation escaped the Kafka client",
    "error": "failed; starting a new Kafka consumer",
}


def supervisor_restarts(logs: Path) -> collections.Counter[str]:
    """How often each replica's consumer supervisor stepped in (a broker loss is not
    counted: every fault causes those)."""
    counts: collections.Counter[str] = collections.Counter()
    for log_file in logs.glob("*.log"):
        for line in log_file.read_text(errors="replace").splitlines():
            for reason, text in _SUPERVISOR_LINES.items():
                if text in line:
                    counts[reason] += 1
    return counts


def format_resume(resumed: dict[str, float | None]) -> str:
    return " ".join(
        f"{g}={'never' if resumed.get(g) is None else f'{resumed[g]:.1f}s'}"
        for g in GROUPS
        if g in resumed
    )


def resume_summary(results: list[ClusterChaosResult]) -> list[str]:
    """One line per fault kind: median and worst resume time of each group over all runs."""
    lines = []
    for kind in KINDS:
        per_group: dict[str, list[float]] = {g: [] for g in GROUPS}
        never: dict[str, int] = {g: 0 for g in GROUPS}
        for r in results:
            for k, report in zip(r.kinds, r.reports, strict=True):
                if k != kind:
                    continue
                for g in GROUPS:
                    seconds = report.resume_s.get(g)
                    if seconds is None:
                        never[g] += 1
                    else:
                        per_group[g].append(seconds)
        cells = []
        for g in GROUPS:
            if per_group[g]:
                med, worst = statistics.median(per_group[g]), max(per_group[g])
                cells.append(
                    f"{g} {med:.1f}/{worst:.1f}s" + (f" never={never[g]}" if never[g] else "")
                )
        lines.append(f"resume {kind:15} (median/max) " + ", ".join(cells))
    return lines


def _one_seed(seed: int, faults: int, rate_per_s: float) -> ClusterChaosResult:
    # The run's own clients meet dead and paused brokers on purpose: keep their errors quiet.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    root = Path(tempfile.mkdtemp(prefix=f"refplat-chaos-kafka-{seed}-"))
    root.chmod(0o755)  # the embedded Postgres may run as another user
    began = time.monotonic()
    result = asyncio.run(
        cluster_chaos_run(seed, faults=faults, root=root, rate_per_s=rate_per_s, progress=True)
    )
    if result.ok:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"  seed {seed}: logs kept in {root}", flush=True)
    result.seconds = time.monotonic() - began
    return result


def run_seeds(first_seed: int, seeds: int, faults: int, rate_per_s: float, parallel: int) -> int:
    """The cluster run for ``seeds`` seeds, ``parallel`` at a time (each in its own process,
    with its own cluster, Postgres and services); prints each fault with the groups' resume
    times as it happens, each seed's outcome, then the summary. Returns the violation count."""
    numbers = range(first_seed, first_seed + seeds)
    with concurrent.futures.ProcessPoolExecutor(max_workers=parallel) as pool:
        runs = [pool.submit(_one_seed, n, faults, rate_per_s) for n in numbers]
        results = []
        for run in runs:
            result = run.result()
            results.append(result)
            print(
                f"seed={result.seed} accepted={result.accepted} clicks="
                f"{result.clicks_answered}/{result.clicks_stored} faults={len(result.faults)} "
                f"violations={len(result.violations)} [{result.seconds:.0f}s]"
                + "".join(f" restarts_{k}={n}" for k, n in sorted(result.restarts.items())),
                flush=True,
            )
            for report in result.reports:
                print(f"  {report.line()}")
            for violation in result.violations:
                print(f"  VIOLATION: {violation}", flush=True)
    by_kind = collections.Counter(k for r in results for k in r.kinds)
    violations = sum(len(r.violations) for r in results)
    print("chaos-kafka faults by kind: " + " ".join(f"{k}={by_kind[k]}" for k in KINDS))
    for line in resume_summary(results):
        print(f"chaos-kafka {line}")
    restarts = sum((r.restarts for r in results), collections.Counter())
    print(
        "chaos-kafka consumer supervisor restarts: "
        + (" ".join(f"{k}={n}" for k, n in sorted(restarts.items())) or "none")
    )
    print(
        f"chaos-kafka: runs={len(results)} faults={sum(len(r.faults) for r in results)} "
        f"accepted={sum(r.accepted for r in results)} "
        f"clicks={sum(r.clicks_answered for r in results)} violations={violations}",
        flush=True,
    )
    return violations
