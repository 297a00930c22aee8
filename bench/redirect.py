"""Redirect benchmark: the links gateway against the ceiling of a Python server here.

For each link count (1,000 and 1,000,000 links in the database) it measures, on the same
machine and server settings (uvicorn + uvloop + httptools on core 0; wrk, Postgres and the
broker on core 1):

(a) ``bench/redirect_ceiling.py``: a minimal raw-ASGI app answering 302 from a dict;
(b) the real gateway (``python -m services.links``) with click capture on and a broker.

Per app: peak requests/s (wrk, 64 connections; the apps take turns, best of ``--rounds``,
because the machine is shared), then p50/p99 at half the peak rate (wrk paced by a
per-connection ``delay()``: wrk2 is not packaged in Debian), then, for the gateway, the
distinct click ids that reached ``link.clicked`` against the 302s it answered. The requests
pick random codes from a sample of 1,000 spread over all links, from random client addresses.

``--outage-seconds N`` adds a phase with the broker stopped for N seconds under load (a new,
empty broker then starts on the same port, as Tansu is memory-only) and checks that every
click arrives; ``--crash`` adds a phase that SIGKILLs the gateway under load and measures
the clicks lost on a hard crash.

``--broker kafka`` runs the gateway on Apache Kafka (one node; ``kafka-cluster``: three), and a
comma list (``tansu,kafka``) runs the whole benchmark on each in turn. Ends with one line per
broker and link count, and the broker processes' CPU and memory:
``redirect[<broker>]: ratio=<gateway/ceiling> rps=<n> p99_ms=<x> clicks_lost=<n>``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devstack.embedded import EmbeddedBroker, EmbeddedPostgres, free_port  # noqa: E402
from devstack.kafka import KafkaCluster  # noqa: E402
from devstack.profiles import (  # noqa: E402
    BrokerKind,
    broker_env,
    broker_kind,
    kafka_nodes,
    settings_overrides,
)
from shared.messaging.producer import ensure_topics  # noqa: E402
from shared.messaging.topics import topic_partitions  # noqa: E402
from shared.migrate import migrate  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402

SERVER_CORE = "0"
LOAD_CORE = "1"
CONNECTIONS = 64
SAMPLE = 1000
ADMIN_KEY = "bench-admin-key"
DEFINITION = (
    '{"destination_url": "https://shop.example.com/welcome", "allowed_hosts": ["shop.example.com"]}'
)


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        raise ValueError(value)
    number, unit = float(match[1]), match[2]
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(
    port: int, codes_file: Path, seconds: float, connections: int, delay_ms: int = 0
) -> WrkResult:
    env = {**os.environ, "WRK_CODES": str(codes_file), "WRK_DELAY_MS": str(delay_ms)}
    out = subprocess.run(
        [
            "taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s",
            "--latency", "--timeout", "5s", "-s", str(REPO / "bench" / "redirect.lua"),
            f"http://127.0.0.1:{port}",
        ],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p50 = _ms(re.search(r"\n\s+50%\s+(\S+)", out)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"\n\s+99%\s+(\S+)", out)[1])  # type: ignore[index]
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    bad_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if errors:
        print(f"    wrk socket errors: {errors[1]}")
    return WrkResult(rps, p50, p99, requests, int(bad_match[1]) if bad_match else 0)


def wait_port(port: int, timeout: float = 60.0) -> None:
    from devstack.embedded import port_open

    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {port}")
        time.sleep(0.05)


async def seed(dsn: str, total: int) -> None:
    """One program and ``total`` participants with codes K0000001..., inserted set-wise."""
    conn = await asyncpg.connect(dsn)
    try:
        program_id = await conn.fetchval("SELECT id FROM programs LIMIT 1")
        if program_id is None:
            program_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO programs (id, name, current_version) VALUES ($1, 'bench', 1)",
                program_id,
            )
            await conn.execute(
                "INSERT INTO program_versions (program_id, version, effective_from, definition) "
                "VALUES ($1, 1, now() - interval '1 minute', $2::jsonb)",
                program_id,
                DEFINITION,
            )
        have = await conn.fetchval("SELECT count(*) FROM participants")
        if have < total:
            await conn.execute(
                "INSERT INTO participants (id, program_id, external_user_id, code) "
                "SELECT gen_random_uuid(), $1, 'user-' || i, 'K' || lpad(i::text, 7, '0') "
                "FROM generate_series($2::int, $3::int) AS i",
                program_id,
                have + 1,
                total,
            )
            await conn.execute("ANALYZE participants")
    finally:
        await conn.close()


def sample_codes(total: int, path: Path) -> list[str]:
    step = max(1, total // SAMPLE)
    codes = [f"K{i:07d}" for i in range(1, total + 1, step)][:SAMPLE]
    path.write_text("\n".join(codes) + "\n")
    return codes


async def distinct_clicks(bootstrap: str) -> tuple[int, int]:
    """(distinct click ids, messages) on link.clicked, read from the start to the end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        fetch_max_wait_ms=15, max_partition_fetch_bytes=8 * 1024 * 1024,
    )  # fmt: skip
    await consumer.start()
    try:
        parts = await topic_partitions(consumer, ["link.clicked"])
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        seen: set[bytes] = set()
        messages = 0
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500, max_records=20000)
            for records in batch.values():
                for r in records:
                    messages += 1
                    for k, v in r.headers:
                        if k == "ce_id":
                            seen.add(v)
                            break
        return len(seen), messages
    finally:
        await consumer.stop()


def warm(port: int, codes: list[str]) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        for i, code in enumerate(codes):
            http.get(f"/r/{code}", headers={"X-Forwarded-For": f"10.9.{i // 250}.{i % 250 + 1}"})


def redirects_answered(port: int) -> int:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    match = re.search(r'^redirects_total\{status="302"\} ([\d.e+]+)$', text, re.M)
    return int(float(match[1])) if match else 0


class Bench:
    def __init__(self, args: argparse.Namespace, kind: BrokerKind = "tansu") -> None:
        self.args = args
        self.kind = kind
        self.root = Path(tempfile.mkdtemp(prefix="bench-redirect-"))
        self.root.chmod(0o755)
        self.pg = EmbeddedPostgres(self.root / "pg", free_port())
        self.broker: EmbeddedBroker | None = None
        self.broker_port = free_port()
        # Apache Kafka: the same ports each time, formatted anew (empty) on every start.
        self.kafka = (
            KafkaCluster(self.root / "kafka", kafka_nodes(kind)) if kind != "tansu" else None
        )
        self.dsn = ""
        self.broker_use: dict[str, tuple[float, float]] = {}

    def start_broker(self) -> None:
        if self.kafka is not None:
            self.kafka.start()
        else:
            self.broker = EmbeddedBroker(self.broker_port, self.root / "broker.log")
            self.broker.start()
        settings = ServiceSettings(
            kafka_bootstrap_servers=self.bootstrap, **settings_overrides(self.kind)
        )
        asyncio.run(ensure_topics(settings))

    def stop_broker(self) -> None:
        if self.kafka is not None:
            self.kafka.stop()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    @property
    def bootstrap(self) -> str:
        if self.kafka is not None:
            return self.kafka.bootstrap_servers
        return f"127.0.0.1:{self.broker_port}"

    def broker_pids(self) -> dict[str, int]:
        if self.kafka is not None:
            return {f"kafka-{n.node_id}": n.pid for n in self.kafka.nodes if n.pid is not None}
        return {"tansu": self.broker.pid} if self.broker and self.broker.pid else {}

    def note_broker_use(self) -> None:
        """CPU seconds since start and resident memory of each broker process, now."""
        for name, pid in self.broker_pids().items():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc = psutil.Process(pid)
                times = proc.cpu_times()
                self.broker_use[name] = (times.user + times.system, proc.memory_info().rss)

    def gateway(self, port: int, journal: Path) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PORT": str(port),
            "DATABASE_URL": self.dsn,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            **broker_env(self.kind),
            "ADMIN_API_KEY": ADMIN_KEY,
            "CLICK_JOURNAL_DIR": str(journal),
            "LOG_LEVEL": "WARNING",
            "OTEL_TRACES_EXPORTER": "none",
        }
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, sys.executable, "-m", "services.links"],
            cwd=REPO, env=env, stdout=open(self.root / f"gateway-{port}.log", "ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_port(port)
        return proc

    def ceiling(self, port: int, codes_file: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, sys.executable,
             str(REPO / "bench" / "redirect_ceiling.py"), str(port), str(codes_file)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_port(port)
        return proc

    def peak(self, port: int, codes_file: Path) -> WrkResult:
        return wrk(port, codes_file, self.args.seconds, CONNECTIONS)

    def paced(self, port: int, codes_file: Path, rate: float) -> WrkResult:
        # wrk's delay() is per connection; about 3 ms per request per connection here
        # (2 ms delay + the answer + wrk's timer), so the connection count sets the rate.
        connections = max(2, round(rate * 0.003))
        return wrk(port, codes_file, self.args.seconds, connections, delay_ms=2)

    def run_links(self, total: int) -> str:
        print(f"\n== {total:,} links in the database")
        t = time.monotonic()
        asyncio.run(seed(self.dsn, total))
        print(f"  seeded in {time.monotonic() - t:.1f}s")
        codes_file = self.root / f"codes-{total}.txt"
        codes = sample_codes(total, codes_file)

        self.start_broker()
        ceiling_port, gateway_port = free_port(), free_port()
        journal = self.root / f"journal-{total}"
        ceiling = self.ceiling(ceiling_port, codes_file)
        gateway = self.gateway(gateway_port, journal)
        try:
            for port in (ceiling_port, gateway_port):
                warm(port, codes)  # every sampled code once (the gateway's cache fills)
                wrk(port, codes_file, self.args.warmup, CONNECTIONS)
            # The machine is shared: the two apps take turns, best of the rounds counts.
            peaks: dict[int, list[WrkResult]] = {ceiling_port: [], gateway_port: []}
            for _ in range(self.args.rounds):
                for port in (ceiling_port, gateway_port):
                    peaks[port].append(self.peak(port, codes_file))
            best = {port: max(runs, key=lambda r: r.rps) for port, runs in peaks.items()}
            paced = {port: self.paced(port, codes_file, best[port].rps / 2) for port in peaks}
            for label, port in (("ceiling", ceiling_port), ("gateway", gateway_port)):
                rounds = ", ".join(f"{r.rps:.0f}" for r in peaks[port])
                print(
                    f"  {label:<8} peak {best[port].rps:>7.0f} req/s (rounds: {rounds}; p50 "
                    f"{best[port].p50_ms:.2f} ms, p99 {best[port].p99_ms:.2f} ms) | paced at "
                    f"{paced[port].rps:.0f} req/s: p50 {paced[port].p50_ms:.2f} ms, p99 "
                    f"{paced[port].p99_ms:.2f} ms"
                )
            answered = redirects_answered(gateway_port)
            self.note_broker_use()
        finally:
            ceiling.terminate()
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(30)
            ceiling.wait(10)
        distinct, messages = asyncio.run(distinct_clicks(self.bootstrap))
        self.stop_broker()
        lost = max(0, answered - distinct)
        leftover = sum(1 for _ in journal.glob("clicks-*.log"))
        print(
            f"  clicks: {answered} redirects answered (302), {distinct} distinct click ids on "
            f"link.clicked ({messages} messages); journal segments left: {leftover}"
        )
        ratio = best[gateway_port].rps / best[ceiling_port].rps
        return (
            f"redirect[{self.kind}]: ratio={ratio:.2f} rps={best[gateway_port].rps:.0f} "
            f"p99_ms={paced[gateway_port].p99_ms:.2f} clicks_lost={lost}"
        )

    def outage(self, seconds: float) -> None:
        """Broker down for ``seconds`` under load at a steady rate; every click must arrive."""
        print(f"\n== broker outage of {seconds:.0f}s under load")
        asyncio.run(seed(self.dsn, 1000))
        codes_file = self.root / "codes-outage.txt"
        sample_codes(1000, codes_file)
        self.start_broker()
        port = free_port()
        proc = self.gateway(port, self.root / "journal-outage")
        try:
            wrk(port, codes_file, 2, 8)  # warm the cache
            before = redirects_answered(port)
            self.stop_broker()
            during = wrk(port, codes_file, seconds, 10, delay_ms=2)  # ~5,000 req/s
            self.start_broker()  # a new, empty broker on the same port(s)
            after = wrk(port, codes_file, 5, 10, delay_ms=2)
            answered = redirects_answered(port) - before
            time.sleep(3)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        distinct, _ = asyncio.run(distinct_clicks(self.bootstrap))
        self.stop_broker()
        print(
            f"  during the outage: {during.rps:.0f} req/s, p50 {during.p50_ms:.2f} ms, p99 "
            f"{during.p99_ms:.2f} ms, non-3xx {during.bad}; after: p99 {after.p99_ms:.2f} ms"
        )
        print(
            f"outage: seconds={seconds:.0f} answered={answered} arrived={distinct} "
            f"clicks_lost={max(0, answered - distinct)}"
        )

    def crash(self) -> None:
        """SIGKILL the gateway under load, restart it on the same journal, count the loss."""
        print("\n== hard crash (SIGKILL) under load")
        asyncio.run(seed(self.dsn, 1000))
        codes_file = self.root / "codes-crash.txt"
        sample_codes(1000, codes_file)
        self.start_broker()
        journal = self.root / "journal-crash"
        port = free_port()
        proc = self.gateway(port, journal)
        load = subprocess.Popen(
            ["taskset", "-c", LOAD_CORE, "wrk", "-t1", "-c64", "-d30s", "-s",
             str(REPO / "bench" / "redirect.lua"), f"http://127.0.0.1:{port}"],
            env={**os.environ, "WRK_CODES": str(codes_file)}, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(5)
        answered_before = redirects_answered(port)
        proc.kill()
        proc.wait(10)
        out, _ = load.communicate(timeout=60)
        completed = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
        # Every 302 wrk completed was answered before the kill. Restart to replay the journal.
        proc = self.gateway(port, journal)
        time.sleep(5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        distinct, _ = asyncio.run(distinct_clicks(self.bootstrap))
        self.stop_broker()
        print(
            f"crash: responses_received={completed} (>= {answered_before} answered 0.1s before "
            f"the kill) clicks_on_topic={distinct} lost_at_most={max(0, completed - distinct)}"
        )

    def run(self) -> list[str]:
        print(f"\n=== broker: {self.kind} ===")
        self.pg.start()
        try:
            self.dsn = self.pg.url.rsplit("/", 1)[0] + "/bench_links"
            asyncio.run(self._create_db())
            asyncio.run(migrate("links", self.dsn))
            lines = [self.run_links(n) for n in self.args.links]
            if self.args.outage_seconds:
                self.outage(self.args.outage_seconds)
            if self.args.crash:
                self.crash()
            use = " ".join(
                f"{name}: cpu={cpu:.0f}s rss={rss / 2**20:.0f}MiB"
                for name, (cpu, rss) in self.broker_use.items()
            )
            return [
                *(f"# {n:,} links\n{line}" for n, line in zip(self.args.links, lines, strict=True)),
                f"redirect[{self.kind}]: broker process(es) at the end of the last run: {use}",
            ]
        finally:
            self.stop_broker()
            self.pg.stop()
            shutil.rmtree(self.root, ignore_errors=True)

    async def _create_db(self) -> None:
        conn = await asyncpg.connect(self.pg.url)
        try:
            await conn.execute('CREATE DATABASE "bench_links"')
        finally:
            await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, nargs="*", default=[1_000, 1_000_000])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2, help="peak runs per app, best counts")
    parser.add_argument("--outage-seconds", type=float, default=0.0)
    parser.add_argument("--crash", action="store_true")
    parser.add_argument(
        "--broker",
        default="tansu",
        help="tansu, kafka or kafka-cluster; a comma list (tansu,kafka) runs each in turn and "
        "prints their lines together",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: `sudo apt-get install -y wrk` (Debian/Ubuntu)")
        return 2
    if shutil.which("taskset") is None:
        print("taskset is not installed: `sudo apt-get install -y util-linux`")
        return 2
    # Postgres, the broker and wrk inherit core 1; the servers are started on core 0.
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    lines = [
        line for kind in args.broker.split(",") for line in Bench(args, broker_kind(kind)).run()
    ]
    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
