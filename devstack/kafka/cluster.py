"""Apache Kafka in KRaft mode on loopback: ``KafkaCluster(root, size=1)`` is one combined
broker+controller node, ``size=3`` three combined nodes that are each other's controller quorum.
Nodes are child processes (``kafka.Kafka`` on the cached jars, see ``dist``) that can be killed,
paused, resumed and restarted one by one, keeping their data, for failover runs."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devstack.embedded import free_port, port_open
from devstack.kafka.dist import KafkaDistribution, find_java

HEAP_MB = int(os.environ.get("KAFKA_HEAP_MB", "512"))
_STARTED = "Kafka Server started"
_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
"""


def new_cluster_id() -> str:
    """KRaft cluster ids are 16 random bytes, base64url without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


@dataclass
class KafkaNode:
    """One combined broker+controller process. Its data survives kill and restart."""

    node_id: int
    root: Path
    broker_port: int
    controller_port: int
    heap_mb: int = HEAP_MB
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log_offset: int = field(default=0, init=False, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def controller_address(self) -> str:
        return f"127.0.0.1:{self.controller_port}"

    @property
    def config_path(self) -> Path:
        return self.root / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def write_config(self, voters: str, size: int) -> None:
        replicas = min(3, size)
        props = {
            "process.roles": "broker,controller",
            "node.id": self.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{self.address},CONTROLLER://{self.controller_address}",
            "advertised.listeners": f"PLAINTEXT://{self.address}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": self.root / "data",
            # Internal topics replicated like the application's topics; fewer partitions than
            # the defaults (50) keep startup and the failover of a node quick on a small host.
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": 12,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min(2, replicas),
            "transaction.state.log.num.partitions": 6,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min(2, replicas),
            "default.replication.factor": replicas,
            "min.insync.replicas": min(2, replicas),
            "num.partitions": 6,
            # Local runs start many short-lived groups: no 3 s wait before their first join.
            "group.initial.rebalance.delay.ms": 0,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.root / "log4j2.properties").write_text(_LOG4J2.format(log=self.log_path))

    def _java(self, java: str, classpath: str, main: str, *args: str) -> list[str]:
        return [
            java,
            f"-Xmx{self.heap_mb}m",
            "-Xms64m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.root / 'log4j2.properties'}",
            "-cp",
            classpath,
            main,
            *args,
        ]

    def format_command(self, java: str, classpath: str, cluster_id: str) -> list[str]:
        return self._java(
            java,
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            cluster_id,
            "--config",
            str(self.config_path),
            "--ignore-formatted",
        )

    def start(self, java: str, classpath: str) -> None:
        """Start the process; ``wait_started`` waits until it serves as a broker."""
        if self.running:
            return
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        out = open(self.root / "stdout.log", "ab")
        self._proc = subprocess.Popen(
            self._java(java, classpath, "kafka.Kafka", str(self.config_path)),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def wait_started(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = self._proc.returncode if self._proc else None
                raise RuntimeError(f"kafka node {self.node_id} exited ({code}):\n{self.tail()}")
            if port_open(self.broker_port) and _STARTED in self._log_since_start():
                return
            time.sleep(0.1)
        raise TimeoutError(f"kafka node {self.node_id} did not start in time:\n{self.tail()}")

    def _log_since_start(self) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        parts = []
        for path in (self.root / "stdout.log", self.log_path):
            if path.exists():
                parts.append(path.read_text(errors="replace")[-chars:])
        return "\n".join(parts)

    def signal(self, sig: int) -> None:
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"kafka node {self.node_id} is not running")
        self._proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, as a crashed machine: no controlled shutdown, no leadership handover."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGCONT)  # a paused node must be able to die
            self._proc.kill()
        self._proc.wait(30)
        self._proc = None

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM: controlled shutdown (leaders move away first), then SIGKILL if it hangs."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGCONT)
                self._proc.terminate()
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(30)
        self._proc = None


class KafkaCluster:
    """``size`` combined broker+controller nodes with ids 1..size, formatted under ``root``."""

    def __init__(
        self,
        root: Path,
        size: int = 1,
        *,
        heap_mb: int = HEAP_MB,
        distribution: KafkaDistribution | None = None,
        quiet: bool = False,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster has at least one node")
        self.root = root
        self.size = size
        self.quiet = quiet
        self.distribution = distribution or KafkaDistribution()
        self.cluster_id = new_cluster_id()
        self.nodes = [
            KafkaNode(i, root / f"node-{i}", free_port(), free_port(), heap_mb)
            for i in range(1, size + 1)
        ]
        self._java = ""
        self._classpath = ""
        self.startup_seconds = 0.0

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(n.address for n in self.nodes)

    @property
    def voters(self) -> str:
        return ",".join(f"{n.node_id}@{n.controller_address}" for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"kafka: {text}", flush=True)

    def start(self, timeout_s: float = 120) -> None:
        """Resolve the jars (first run only), format every node and start them all; returns
        when every node serves as a broker. Prints how long it took."""
        self._java = find_java()
        self._classpath = self.distribution.classpath()
        started = time.perf_counter()
        for node in self.nodes:
            node.write_config(self.voters, self.size)
        formats = [
            subprocess.Popen(
                n.format_command(self._java, self._classpath, self.cluster_id),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for n in self.nodes
        ]
        for node, proc in zip(self.nodes, formats, strict=True):
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"formatting kafka node {node.node_id} failed:\n{out.decode()}")
        for node in self.nodes:
            node.start(self._java, self._classpath)
        deadline = time.monotonic() + timeout_s
        try:
            for node in self.nodes:
                node.wait_started(deadline)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        what = "one node" if self.size == 1 else f"{self.size} nodes"
        self._say(
            f"Apache Kafka {self.distribution.version}, {what}, up in "
            f"{self.startup_seconds:.1f}s at {self.bootstrap_servers}"
        )

    def stop(self) -> None:
        for node in self.nodes:  # SIGTERM all first: they shut down together, not in turn
            if node.running:
                with contextlib.suppress(ProcessLookupError, RuntimeError):
                    node.signal(signal.SIGCONT)
                    node.signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()

    # --- faults, one node at a time ------------------------------------------------------

    def kill(self, node_id: int) -> None:
        self.node(node_id).kill()

    def pause(self, node_id: int) -> None:
        """SIGSTOP: the node holds its sockets but answers nothing, like a long GC pause."""
        self.node(node_id).signal(signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        self.node(node_id).signal(signal.SIGCONT)

    def start_node(self, node_id: int, timeout_s: float = 120) -> None:
        """Start a killed or stopped node again on its data and ports."""
        node = self.node(node_id)
        node.start(self._java, self._classpath)
        node.wait_started(time.monotonic() + timeout_s)

    def stop_node(self, node_id: int) -> None:
        self.node(node_id).stop()

    def restart_node(self, node_id: int, timeout_s: float = 120) -> None:
        """A rolling-restart step: controlled shutdown, then start and wait until serving."""
        self.stop_node(node_id)
        self.start_node(node_id, timeout_s)

    # --- who leads what ------------------------------------------------------------------

    def active_controller(self) -> int:
        """The node id of the KRaft quorum leader (the active controller)."""
        live = [n for n in self.nodes if n.running and port_open(n.controller_port)]
        if not live:
            raise RuntimeError("no kafka controller is reachable")
        out = subprocess.run(
            [
                self._java,
                "-Xmx128m",
                "-Dlog4j2.level=ERROR",
                "-cp",
                self._classpath,
                "org.apache.kafka.tools.MetadataQuorumCommand",
                "--bootstrap-controller",
                ",".join(n.controller_address for n in live),
                "describe",
                "--status",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        match = re.search(r"LeaderId:\s+(\d+)", out.stdout)
        if match is None:
            raise RuntimeError(f"cannot read the quorum leader:\n{out.stdout}{out.stderr}")
        return int(match.group(1))

    async def partitions(self, topic: str) -> list[dict[str, object]]:
        """Each partition of ``topic`` with its ``leader``, ``replicas`` and ``isr`` node ids."""
        from aiokafka.admin import AIOKafkaAdminClient

        live = ",".join(n.address for n in self.nodes if n.running) or self.bootstrap_servers
        admin = AIOKafkaAdminClient(bootstrap_servers=live, request_timeout_ms=10_000)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        return [
            {
                "partition": p["partition"],
                "leader": p["leader"],
                "replicas": list(p["replicas"]),
                "isr": list(p["isr"]),
            }
            for p in sorted(described["partitions"], key=lambda p: p["partition"])
        ]

    async def leader_of(self, topic: str, partition: int = 0) -> int:
        """The node id leading one partition (-1 while it has no leader)."""
        for p in await self.partitions(topic):
            if p["partition"] == partition:
                return int(p["leader"])  # type: ignore[call-overload]
        raise KeyError(f"{topic} has no partition {partition}")
