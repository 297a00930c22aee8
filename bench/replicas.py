"""Several replicas of each service, as processes, and a rolling restart the way a Kubernetes
Deployment rolls (maxSurge 1, maxUnavailable 0): start a new replica, wait until it is ready,
take the old one out of the load balancer, then SIGTERM it and wait for it to exit.

Callers pick a replica per request with :meth:`ServiceReplicas.url` (round robin over the
replicas in the load balancer), as a Service would. The first replica of each service listens
on the stack's port for it, so ``Stack.url`` and the service URLs the services are given
(links' internal URL, rewards', notifications') reach a live replica.

Used by the Kafka chaos run (rolling restarts) and by the pipeline benchmark (``--replicas``).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from devstack.embedded import free_port
from devstack.stack import Stack, wait_until_ready
from shared.migrate import SERVICES

# A pod's preStop pause before SIGTERM (deploy/base): the ingress stops routing to it first.
PRE_STOP_S = 0.5


@dataclass
class Replica:
    service: str
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class ServiceReplicas:
    """The replicas of every service; ``live`` is what the load balancer routes to."""

    def __init__(self, stack: Stack, root: Path, per_service: int = 2) -> None:
        self.stack = stack
        self.root = root
        self.per_service = per_service
        self.live: dict[str, list[Replica]] = {s: [] for s in SERVICES}
        self._serial = itertools.count(1)
        self._turn = itertools.count()

    def url(self, service: str) -> str:
        """A replica in the load balancer, round robin."""
        replicas = self.live[service]
        return replicas[next(self._turn) % len(replicas)].url

    def _spawn(self, service: str, port: int | None = None) -> Replica:
        name = f"{service}-{next(self._serial)}"
        port = port or free_port()
        env = self.stack.service_env(service)
        env["PORT"] = str(port)
        # A new pod gets a new emptyDir for its click journal (deploy/README.md).
        env["CLICK_JOURNAL_DIR"] = str(self.root / "clicks" / name)
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{service}"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Replica(service, name, port, proc)

    async def _wait_ready(self, replica: Replica, timeout_s: float = 120) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            await wait_until_ready(
                client,
                replica.name,
                replica.url,
                lambda: replica.proc,
                time.monotonic() + timeout_s,
                pause_s=0.2,
            )

    async def start(self) -> None:
        ports = self.stack.config.ports
        started = [
            self._spawn(s, ports[s] if i == 0 else None)
            for s in SERVICES
            for i in range(self.per_service)
        ]
        await asyncio.gather(*(self._wait_ready(r) for r in started))
        for replica in started:
            self.live[replica.service].append(replica)

    async def surge(self, service: str) -> Replica:
        """First half of a rollout step: a new replica, ready and in the load balancer."""
        new = self._spawn(service)
        await self._wait_ready(new)
        self.live[service].append(new)
        return new

    async def retire(self, old: Replica, timeout_s: float = 40) -> tuple[float, int]:
        """Second half: out of the load balancer, preStop pause, SIGTERM, wait for the exit
        (SIGKILL past the timeout, as the kubelet after the grace period). Returns how long
        the exit took and the exit code."""
        self.live[old.service].remove(old)
        await asyncio.sleep(PRE_STOP_S)
        began = time.monotonic()
        old.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(old.proc.wait, timeout_s)
        except subprocess.TimeoutExpired:
            old.proc.kill()
            await asyncio.to_thread(old.proc.wait, 5)
        return time.monotonic() - began, old.proc.returncode

    def stop(self) -> None:
        for replicas in self.live.values():
            for replica in replicas:
                if replica.proc.poll() is None:
                    replica.proc.send_signal(signal.SIGTERM)
        for replicas in self.live.values():
            for replica in replicas:
                try:
                    replica.proc.wait(30)
                except subprocess.TimeoutExpired:
                    replica.proc.kill()
                    replica.proc.wait(5)
