"""Chaos run: referral journeys flow while processes are killed and the infrastructure stalls;
then the system settles and the invariants are checked.

Faults (chosen and timed from the seed, planned before the run): SIGKILL of a random service
followed by a restart, SIGSTOP/SIGCONT of the broker for a few seconds, an immediate stop and
restart of Postgres, and a crash and restart of the broker, which loses its log (the embedded
broker keeps it in memory): after it, the run recovers as an operator would, with the outbox
replay from the restart time minus a margin, for every service (bench/chaos_broker.py).
A few deliberately malformed messages are injected too, and the faults start once they are
dead-lettered. Journeys are driven as a careful client would: every call carries an
Idempotency-Key and is retried until it is answered.

Invariants after settling:
- every accepted conversion has exactly the rewards its rules give (one per side), no more;
- the ledger balances (every entry and in total);
- every referrer reward issued has its notification, exactly once;
- no event is left unsent in any outbox;
- dead-letter topics held only the malformed messages this run injected, each at least once.
  A broker restart empties the DLQ topics, so they are watched for the whole run and everything
  seen in them counts (DeadLetterWatcher), not only what is left at the end.

On real Kafka with replication and acks=all, acknowledged events survive a broker restart and
no replay is needed; docs/operations.md says what the replay guarantees when a broker does lose
data.

    python -m bench.chaos [--seeds N] [--faults F] [--journeys J] [--first-seed S]
                          [--require KIND ...]

``--broker kafka-cluster`` runs the failover chaos on a three-node Apache Kafka cluster instead
(bench/chaos_kafka.py), with no replay.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.chaos_broker import DeadLetterWatcher, restart_broker_and_replay
from devstack.stack import Stack, StackConfig, database_url_for
from shared.contracts import TOPICS, ReferralConverted, dlq_topic

SERVICES = ("links", "attribution", "rewards", "notifications")
# Drawn uniformly: a service kill is twice as likely as each infrastructure fault.
FAULT_KINDS = ("kill", "kill", "pause_broker", "restart_postgres", "restart_broker")
REWARD_AMOUNT = 1000  # minor units, each side


@dataclass(frozen=True)
class Fault:
    kind: str
    delay_s: float  # after the previous fault
    service: str = ""  # kill: which one
    duration_s: float = 0.0  # kill: down time; pause_broker, restart_postgres: how long


def plan_faults(seed: int, count: int, required: tuple[str, ...] = ()) -> list[Fault]:
    """The run's faults, from the seed alone (the journeys draw from another generator, so the
    plan does not depend on how requests and faults interleave). ``required`` kinds replace
    drawn ones if the draw missed them."""
    rng = random.Random(f"faults-{seed}")
    kinds = [rng.choice(FAULT_KINDS) for _ in range(count)]
    free = list(range(count))
    for kind in required:
        if kind in kinds or not free:
            continue
        kinds[free.pop(rng.randrange(len(free)))] = kind
    faults = []
    for kind in kinds:
        delay = rng.uniform(0.3, 1.5)
        if kind == "kill":
            faults.append(Fault(kind, delay, rng.choice(SERVICES), rng.uniform(0.2, 1.5)))
        elif kind == "pause_broker":
            faults.append(Fault(kind, delay, duration_s=rng.uniform(2, 5)))
        elif kind == "restart_postgres":
            faults.append(Fault(kind, delay, duration_s=rng.uniform(0.5, 2)))
        else:
            faults.append(Fault(kind, delay))
    return faults


@dataclass
class ChaosResult:
    seed: int
    faults: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    accepted: int = 0
    injected_ids: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


async def _retrying(
    http: httpx.AsyncClient,
    method: str,
    url: str | Callable[[], str],
    *,
    headers: dict[str, str],
    json: dict[str, Any] | None = None,
    attempts: int = 200,
) -> dict[str, Any]:
    """A careful client: same Idempotency-Key on every retry, until the service answers.
    ``url`` may be a function, asked again on every attempt (a load balancer's pick)."""
    for _ in range(attempts):
        try:
            target = url() if callable(url) else url
            response = await http.request(method, target, headers=headers, json=json)
            if response.status_code in (200, 201):
                return response.json()  # type: ignore[no-any-return]
            if response.status_code < 500 and response.status_code not in (403, 404, 409):
                raise RuntimeError(f"{method} {url} -> {response.status_code}: {response.text}")
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.25)
    raise RuntimeError(f"{method} {url} never succeeded")


async def chaos_program(
    http: httpx.AsyncClient,
    links: str,
    admin: dict[str, str],
    name: str,
    referrer_cap: int | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """A double-sided program (no velocity rule: the run refers fast on purpose), its referrer
    reward capped at ``referrer_cap`` per referrer if given, and the headers of its new key,
    retried across faults."""
    referrer: dict[str, Any] = {"amount": REWARD_AMOUNT, "unit": "USD"}
    if referrer_cap is not None:
        referrer["lifetime_cap"] = referrer_cap
    program = await _retrying(
        http,
        "POST",
        f"{links}/v1/programs",
        headers=admin,
        json={
            "name": name,
            "definition": {
                "destination_url": "https://shop.example.com/",
                "rewards": {
                    "referrer": referrer,
                    "referee": {"amount": REWARD_AMOUNT, "unit": "USD"},
                },
                "fraud": {"velocity": {"action": "allow"}},
            },
        },
    )
    key = await _retrying(http, "POST", f"{links}/v1/programs/{program['id']}/keys", headers=admin)
    return program, {"Authorization": f"Bearer {key['secret_key']}"}


async def wait_attribution_knows(stack: Stack, codes: list[str], timeout_s: float = 300) -> None:
    """Until the program's key and codes reached attribution by events: the key is refused
    before, and a signup naming a code attribution has not heard of waits (pending) for the
    enrolment, so the journeys start only then (a loaded machine takes more than any fixed
    wait)."""
    db = await asyncpg.connect(database_url_for(stack.server_url, "attribution"))
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            known = await db.fetchval(
                "SELECT count(*) FROM participants WHERE code = ANY($1::text[])", codes
            )
            keys = await db.fetchval("SELECT count(*) FROM api_keys")
            if known == len(codes) and keys:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"attribution knows {known} of {len(codes)} codes, {keys} keys")
            await asyncio.sleep(0.5)
    finally:
        await db.close()


async def _journeys(
    stack: Stack,
    http: httpx.AsyncClient,
    server: dict[str, str],
    codes: list[str],
    count: int,
    rng: random.Random,
    accepted: list[str],
) -> None:
    attribution = stack.url("attribution")
    for i in range(count):
        customer = f"chaos-{uuid.uuid4().hex[:10]}"
        code = codes[rng.randrange(len(codes))]
        await _retrying(
            http,
            "POST",
            f"{attribution}/v1/signups",
            headers={**server, "Idempotency-Key": f"s-{customer}"},
            json={"customer_id": customer, "referral_code": code},
        )
        result = await _retrying(
            http,
            "POST",
            f"{attribution}/v1/conversions",
            headers={**server, "Idempotency-Key": f"c-{customer}"},
            json={
                "customer_id": customer,
                "order_id": f"o-{customer}",
                "amount": 1500 + i,
                "currency": "USD",
            },
        )
        accepted.append(result["conversion_id"])


async def _inject_malformed(stack: Stack, count: int) -> set[str]:
    ids: set[str] = set()
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(count):
            event_id = str(uuid.uuid4())
            ids.add(event_id)
            headers = [
                ("ce_specversion", b"1.0"),
                ("ce_id", event_id.encode()),
                ("ce_source", b"/chaos"),
                ("ce_type", ReferralConverted.TYPE.encode()),
            ]
            await producer.send_and_wait(
                ReferralConverted.TOPIC, value=b"{malformed %d" % i, key=b"chaos", headers=headers
            )
    finally:
        await producer.stop()
    return ids


async def _inject(stack: Stack, fault: Fault, watcher: DeadLetterWatcher) -> str:
    if fault.kind == "kill":
        stack.stop_service(fault.service, signal.SIGKILL, timeout_s=5)
        await asyncio.sleep(fault.duration_s)
        stack.start_service(fault.service)
        await stack.wait_ready(timeout_s=90, services=(fault.service,))
        return f"SIGKILL {fault.service}, restarted"
    if fault.kind == "pause_broker":
        assert stack.broker is not None and stack.broker.pid is not None
        os.kill(stack.broker.pid, signal.SIGSTOP)
        await asyncio.sleep(fault.duration_s)
        os.kill(stack.broker.pid, signal.SIGCONT)
        return f"broker paused {fault.duration_s:.1f}s"
    if fault.kind == "restart_postgres":
        assert stack.postgres is not None
        await asyncio.to_thread(stack.postgres.kill)
        await asyncio.sleep(fault.duration_s)
        await asyncio.to_thread(stack.postgres.start)
        return "postgres stopped (immediate) and restarted"
    watcher.broker_restarted()
    return await restart_broker_and_replay(stack)


async def _dead_letter_ids(stack: Stack) -> set[str]:
    """The ce_id of every dead letter. DLQ writes are at-least-once (a consumer killed between
    dead-lettering and committing its offset dead-letters the message again), so ids count."""
    consumer = AIOKafkaConsumer(
        *[dlq_topic(t) for t in TOPICS],
        bootstrap_servers=stack.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        ids: set[str] = set()
        while batch := await consumer.getmany(timeout_ms=1500):
            for records in batch.values():
                ids.update(dict(r.headers).get("ce_id", b"?").decode() for r in records)
        return ids
    finally:
        await consumer.stop()


async def _check(
    stack: Stack, result: ChaosResult, accepted: list[str], watcher: DeadLetterWatcher
) -> None:
    ids = [uuid.UUID(c) for c in accepted]
    dbs = {s: await asyncpg.connect(database_url_for(stack.server_url, s)) for s in SERVICES}
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while True:
            rows = await dbs["rewards"].fetch(
                "SELECT conversion_id, side, count(*) AS n FROM rewards "
                "WHERE conversion_id = ANY($1::uuid[]) GROUP BY conversion_id, side",
                ids,
            )
            unsent = {
                s: await db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                for s, db in dbs.items()
            }
            notified = await dbs["notifications"].fetchval(
                "SELECT count(*) FROM notifications WHERE kind = 'reward_issued'"
            )
            issued_referrer = await dbs["rewards"].fetchval(
                "SELECT count(*) FROM rewards WHERE side = 'referrer' AND status = 'issued'"
            )
            settled = (
                len(rows) == 2 * len(ids)
                and not any(unsent.values())
                and notified >= issued_referrer
            )
            if settled or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
        per = {(r["conversion_id"], r["side"]): r["n"] for r in rows}
        missing = [c for c in ids for side in ("referrer", "referee") if (c, side) not in per]
        doubled = [k for k, n in per.items() if n != 1]
        if missing:
            result.violations.append(f"{len(missing)} reward(s) missing")
        if doubled:
            result.violations.append(f"{len(doubled)} reward(s) duplicated")
        unbalanced = await dbs["rewards"].fetchval(
            "SELECT count(*) FROM (SELECT entry_id FROM ledger_postings GROUP BY entry_id, unit "
            "HAVING sum(amount) <> 0) x"
        )
        total = await dbs["rewards"].fetchval(
            "SELECT coalesce(sum(amount), 0) FROM ledger_postings"
        )
        if unbalanced or total:
            result.violations.append(f"ledger unbalanced ({unbalanced} entries, total {total})")
        if notified != issued_referrer:
            result.violations.append(
                f"{issued_referrer} referrer rewards issued but {notified} notifications"
            )
        if any(unsent.values()):
            result.violations.append(f"unsent outbox rows: {unsent}")
        dead = watcher.ids | await _dead_letter_ids(stack)
        if dead != result.injected_ids:
            result.violations.append(
                f"DLQs held {len(dead)} distinct message(s), {len(result.injected_ids)} injected "
                f"({len(dead - result.injected_ids)} not injected, "
                f"{len(result.injected_ids - dead)} injected never dead-lettered)"
            )
    finally:
        for db in dbs.values():
            await db.close()


async def _wait_dead_lettered(watcher: DeadLetterWatcher, ids: set[str], timeout_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not ids <= watcher.ids:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def chaos_run(
    seed: int,
    *,
    faults: int,
    journeys: int,
    root: Path,
    require: tuple[str, ...] = (),
) -> ChaosResult:
    rng = random.Random(f"journeys-{seed}")
    plan = plan_faults(seed, faults, require)
    result = ChaosResult(seed)
    config = StackConfig.for_tests(root)
    # A consumer that is torn down without leaving its group (a kill, or a consumer recreated
    # after a broker restart) holds its partitions until its session times out; 3 s instead of
    # 10 s keeps the run short. It only makes rebalances more frequent, which is more chaos.
    config.extra_env.setdefault("KAFKA_SESSION_TIMEOUT_MS", "3000")
    stack = Stack(config)
    stop_watching = asyncio.Event()
    watching: asyncio.Task[None] | None = None
    try:
        await stack.start()
        watcher = DeadLetterWatcher(stack.bootstrap)
        watching = asyncio.create_task(watcher.run(stop_watching))
        admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
        async with httpx.AsyncClient(timeout=10) as http:
            links = stack.url("links")
            program, server = await chaos_program(http, links, admin, f"chaos {seed}")
            codes = []
            for i in range(5):
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
            driver = asyncio.create_task(
                _journeys(stack, http, server, codes, journeys, rng, accepted)
            )
            result.injected_ids = await _inject_malformed(stack, 1 + seed % 3)
            # Dead-lettered before any fault: a broker restart would otherwise lose them.
            if not await _wait_dead_lettered(watcher, result.injected_ids, timeout_s=60):
                result.violations.append("injected malformed messages were not dead-lettered")
            for fault in plan:
                await asyncio.sleep(fault.delay_s)
                began = time.monotonic()
                what = await _inject(stack, fault, watcher)
                result.faults.append(f"{what} [{time.monotonic() - began:.1f}s]")
                result.kinds.append(fault.kind)
            await driver
            result.accepted = len(accepted)
            await _check(stack, result, accepted, watcher)
    finally:
        stop_watching.set()
        if watching is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(watching, 20)
        stack.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=("embedded", "kafka-cluster"), default="embedded")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--faults", type=int, default=None, help="10; kafka-cluster: 5")
    parser.add_argument(
        "--rate", type=float, default=3.0, help="kafka-cluster: journeys per second"
    )
    parser.add_argument("--parallel", type=int, default=1, help="kafka-cluster: seeds at once")
    parser.add_argument("--journeys", type=int, default=60)
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        choices=sorted(set(FAULT_KINDS)),
        help="every seed injects at least one fault of this kind (repeatable)",
    )
    args = parser.parse_args()
    if args.broker == "kafka-cluster":
        from bench.chaos_kafka import run_seeds

        violations = run_seeds(
            args.first_seed, args.seeds, args.faults or 5, args.rate, args.parallel
        )
        return 1 if violations else 0
    args.faults = args.faults or 10
    violations = 0
    injected = 0
    by_kind: collections.Counter[str] = collections.Counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        root = Path(tempfile.mkdtemp(prefix=f"refplat-chaos-{seed}-"))
        root.chmod(0o755)  # the embedded Postgres may run as another user
        result = asyncio.run(
            chaos_run(
                seed,
                faults=args.faults,
                journeys=args.journeys,
                root=root,
                require=tuple(args.require),
            )
        )
        if result.ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"  logs kept in {root / 'logs'}")
        injected += len(result.faults)
        by_kind.update(result.kinds)
        violations += len(result.violations)
        print(
            f"seed={seed} accepted={result.accepted} faults={len(result.faults)} "
            f"violations={len(result.violations)}"
        )
        for fault in result.faults:
            print(f"  fault: {fault}")
        for violation in result.violations:
            print(f"  VIOLATION: {violation}")
    kinds = " ".join(f"{k}={by_kind[k]}" for k in sorted(set(FAULT_KINDS)))
    print(f"chaos faults by kind: {kinds}")
    print(f"chaos: runs={args.seeds} faults={injected} violations={violations}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
