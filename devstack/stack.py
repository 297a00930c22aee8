"""The whole system on one machine: Postgres and the broker (embedded unless the environment
names servers), four databases migrated, topics created, and the four services as separate
processes with prefixed logs. Used by ``make dev`` and by the end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from devstack.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from devstack.kafka import KafkaCluster
from devstack.kafka.cluster import QUICK_JVM
from devstack.profiles import BrokerKind, broker_env, broker_kind, kafka_nodes
from shared.messaging.producer import ensure_topics
from shared.migrate import SERVICES, migrate
from shared.settings import ServiceSettings

DEFAULT_PORTS = {"links": 8001, "attribution": 8002, "rewards": 8003, "notifications": 8004}
_COLORS = {"links": "36", "attribution": "35", "rewards": "33", "notifications": "32"}


def database_url_for(server_url: str, service: str) -> str:
    """Each service has its own database on the server: ``referral_<service>``."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/referral_{service}"))


@dataclass
class StackConfig:
    state_dir: Path
    # Servers to use instead of embedded ones (DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS).
    database_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    # The broker started when no servers are named: embedded Tansu, or Apache Kafka with one
    # node ("kafka") or three ("kafka-cluster").
    broker: BrokerKind = "tansu"
    # Kafka's JVMs tuned to start fast rather than to run fast (tests).
    kafka_quick_jvm: bool = False
    pg_port: int = 54329
    pg_settings: dict[str, str] = field(default_factory=dict)
    broker_port: int = 19092
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    admin_api_key: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None  # None: logs go to this process's stdout, prefixed
    color: bool = False

    @classmethod
    def from_env(cls, state_dir: Path) -> StackConfig:
        ports = {s: int(os.environ.get(f"{s.upper()}_PORT", p)) for s, p in DEFAULT_PORTS.items()}
        return cls(
            state_dir=state_dir,
            database_url=os.environ.get("DATABASE_URL") or None,
            kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            broker=broker_kind(os.environ.get("BROKER")),
            pg_port=int(os.environ.get("DEV_PG_PORT", 54329)),
            broker_port=int(os.environ.get("DEV_BROKER_PORT", 19092)),
            ports=ports,
            admin_api_key=os.environ.get("ADMIN_API_KEY") or None,
            color=sys.stdout.isatty(),
        )

    @classmethod
    def for_tests(cls, state_dir: Path) -> StackConfig:
        return cls(
            state_dir=state_dir,
            database_url=os.environ.get("TEST_DATABASE_URL") or None,
            kafka_bootstrap_servers=os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS") or None,
            broker=broker_kind(os.environ.get("TEST_BROKER")),
            kafka_quick_jvm=True,
            pg_port=free_port(),
            broker_port=free_port(),
            ports={s: free_port() for s in SERVICES},
            admin_api_key=secrets.token_urlsafe(24),
            log_dir=state_dir / "logs",
            # Test receivers (webhooks, SMTP) listen on loopback.
            extra_env={"OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true"},
        )


async def wait_until_ready(
    client: httpx.AsyncClient,
    name: str,
    url: str,
    process: Callable[[], subprocess.Popen[bytes] | None],
    deadline: float,
    pause_s: float = 0.1,
) -> None:
    """Until ``url``'s ``/readyz`` answers 200: an error as soon as the service's process (as
    ``process`` finds it now) has exited, or once the monotonic ``deadline`` has passed."""
    while True:
        proc = process()
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(f"{url}/readyz")).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not ready in time (see its log)")
        await asyncio.sleep(pause_s)


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.postgres: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None
        self.kafka: KafkaCluster | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._pumps: list[threading.Thread] = []
        self.server_url = ""
        self.bootstrap = ""
        self.admin_api_key = ""

    # --- infrastructure ---------------------------------------------------------------

    def start_infra(self) -> None:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        if cfg.database_url:
            self.server_url = cfg.database_url
        else:
            self.postgres = EmbeddedPostgres(cfg.state_dir / "pgdata", cfg.pg_port, cfg.pg_settings)
            self.postgres.start()
            self.server_url = self.postgres.url
        if cfg.kafka_bootstrap_servers:
            self.bootstrap = cfg.kafka_bootstrap_servers
        elif cfg.broker != "tansu":
            self.kafka = KafkaCluster(
                cfg.state_dir / "kafka",
                kafka_nodes(cfg.broker),
                jvm_options=QUICK_JVM if cfg.kafka_quick_jvm else (),
            )
            self.kafka.start()
            self.bootstrap = self.kafka.bootstrap_servers
        else:
            self.broker = EmbeddedBroker(cfg.broker_port, cfg.state_dir / "broker.log")
            self.broker.start()
            self.bootstrap = self.broker.bootstrap_servers
        self.admin_api_key = cfg.admin_api_key or self._stored_admin_key()

    def _stored_admin_key(self) -> str:
        """A dev admin key generated once and kept in the (git-ignored) state folder."""
        path = self.config.state_dir / "admin_api_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def embedded_broker(self) -> bool:
        return self.broker is not None

    def service_env(self, service: str) -> dict[str, str]:
        env = {
            **os.environ,
            "SERVICE_NAME": service,
            "HOST": "127.0.0.1",
            "PORT": str(self.config.ports[service]),
            "DATABASE_URL": database_url_for(self.server_url, service),
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "ADMIN_API_KEY": self.admin_api_key,
            "OTEL_SERVICE_NAME": service,
            "PUBLIC_BASE_URL": self.url("links"),
            # Links' support story asks these two for the ledger and the messages sent.
            "REWARDS_URL": self.url("rewards"),
            "NOTIFICATIONS_URL": self.url("notifications"),
            # Where the other services confirm a program key whose event has not arrived.
            "LINKS_INTERNAL_URL": self.url("links"),
            "PYTHONUNBUFFERED": "1",
        }
        if self.broker is not None or self.kafka is not None:
            # What the broker we started needs; variables set by the caller win.
            for name, value in broker_env(self.config.broker).items():
                env.setdefault(name, value)
        env.update(self.config.extra_env)
        return env

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.config.ports[service]}"

    async def prepare(self) -> None:
        """Create the four databases, migrate them and create the topics."""
        conn = await asyncpg.connect(self.server_url)
        try:
            for service in SERVICES:
                name = f"referral_{service}"
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                    await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        for service in SERVICES:
            await migrate(service, database_url_for(self.server_url, service))
        await ensure_topics(self.topic_settings())

    def topic_settings(self) -> ServiceSettings:
        """Settings to create the topics with: the services' own (partitions, replicas)."""
        env = self.service_env(SERVICES[0])
        kafka = {k.lower(): v for k, v in env.items() if k.startswith("KAFKA_")}
        return ServiceSettings(**kafka)

    async def restart_broker(self) -> None:
        """Crash the embedded broker and start an empty one on the same port, then recreate
        the topics. Running services reconnect by themselves; what the old broker held is gone
        (recovery: ``shared.messaging.republish``, see docs/operations.md)."""
        if self.broker is None:
            raise RuntimeError("only the embedded broker can be restarted")
        await asyncio.to_thread(self.broker.restart)
        await ensure_topics(self.topic_settings())

    # --- services -----------------------------------------------------------------------

    def start_service(self, service: str) -> None:
        out: int | IO[bytes] = subprocess.PIPE
        if self.config.log_dir is not None:
            self.config.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.config.log_dir / f"{service}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            env=self.service_env(service),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[service] = proc
        if out is subprocess.PIPE:
            pump = threading.Thread(target=self._pump, args=(service, proc), daemon=True)
            pump.start()
            self._pumps.append(pump)

    def _pump(self, service: str, proc: subprocess.Popen[bytes]) -> None:
        prefix = f"{service:<13}|"
        if self.config.color:
            prefix = f"\033[{_COLORS[service]}m{prefix}\033[0m"
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            sys.stdout.write(f"{prefix} {line.decode(errors='replace')}")
            sys.stdout.flush()

    def start_services(self) -> None:
        for service in SERVICES:
            self.start_service(service)

    async def wait_ready(
        self, timeout_s: float = 60.0, services: tuple[str, ...] = SERVICES
    ) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            for service in services:
                await wait_until_ready(
                    client,
                    service,
                    self.url(service),
                    functools.partial(self.processes.get, service),
                    deadline,
                )

    def stop_service(self, service: str, sig: int = signal.SIGTERM, timeout_s: float = 20) -> None:
        proc = self.processes.pop(service, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    async def start(self, ready_timeout_s: float = 90.0) -> None:
        """Infrastructure, databases, topics, then the four services, until all are ready."""
        self.start_infra()
        await self.prepare()
        self.start_services()
        await self.wait_ready(timeout_s=ready_timeout_s)

    def signal_broker(self, sig: int) -> None:
        """Send ``sig`` to the broker this stack started (Tansu, or every Kafka node), e.g.
        SIGSTOP/SIGCONT: a paused broker keeps its sockets, clients just wait."""
        if self.broker is not None and self.broker.pid is not None:
            os.kill(self.broker.pid, sig)
        elif self.kafka is not None:
            for node in self.kafka.nodes:
                node.signal(sig)
        else:
            raise RuntimeError("the broker is not one this stack started")

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for service in list(self.processes):
            self.stop_service(service)
        if self.broker is not None:
            self.broker.stop()
        if self.kafka is not None:
            self.kafka.stop()
        if self.postgres is not None:
            self.postgres.stop()
