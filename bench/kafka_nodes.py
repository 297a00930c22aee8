"""A three-node Apache Kafka cluster (KRaft, every node broker and controller) on loopback, for
the failover chaos run: start, SIGKILL, graceful stop, SIGSTOP/SIGCONT of single nodes, by node
id. Stand-in with the same methods as devstack.kafka.KafkaCluster until that launcher is merged.

The broker's jars come from ``KAFKA_LIBS`` (a directory of Maven-resolved jars, e.g. from
``mvn dependency:copy-dependencies`` on org.apache.kafka:kafka_2.13 4.x and kafka-tools).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devstack.embedded import free_port, port_open

JVM_OPTS = ["-Xms64m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]


@dataclass
class KafkaNode:
    node_id: int
    port: int
    controller_port: int
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def quorum_state(self) -> Path:
        return self.data_dir / "logs" / "__cluster_metadata-0" / "quorum-state"


class KafkaCluster:
    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        self.libs = Path(os.environ["KAFKA_LIBS"])
        self.nodes = [
            KafkaNode(i, free_port(), free_port(), root / f"node-{i}") for i in range(1, size + 1)
        ]
        self.cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return next(n for n in self.nodes if n.node_id == node_id)

    def _properties(self, node: KafkaNode) -> Path:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        replicas = min(3, len(self.nodes))
        props = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": node.data_dir / "logs",
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min(2, replicas),
            "default.replication.factor": replicas,
            "min.insync.replicas": min(2, replicas),
            "unclean.leader.election.enable": "false",
            "auto.create.topics.enable": "false",
            "offsets.topic.num.partitions": 12,
            "transaction.state.log.num.partitions": 6,
            "group.initial.rebalance.delay.ms": 0,
            "num.partitions": 6,
        }
        path = node.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _java(self, main: str, *args: str) -> list[str]:
        return ["java", *JVM_OPTS, "-cp", f"{self.libs}/*", main, *args]

    def format(self) -> None:
        formats = []
        for node in self.nodes:
            node.data_dir.mkdir(parents=True, exist_ok=True)
            props = str(self._properties(node))
            args = self._java(
                "kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c", props
            )
            formats.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        for proc in formats:
            out, _ = proc.communicate(timeout=180)
            if proc.returncode != 0:
                raise RuntimeError(f"formatting KRaft storage failed: {out.decode()[-2000:]}")

    def _spawn(self, node: KafkaNode) -> None:
        log = open(node.data_dir / "server.log", "ab")  # the child keeps it open
        node.proc = subprocess.Popen(
            self._java("kafka.Kafka", str(node.data_dir / "server.properties")),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_port(self, node: KafkaNode, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while not port_open(node.port):
            if node.proc is None or node.proc.poll() is not None:
                raise RuntimeError(f"kafka node {node.node_id} exited; see {node.data_dir}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"kafka node {node.node_id} not listening in {timeout_s}s")
            time.sleep(0.1)

    def start(self) -> None:
        began = time.monotonic()
        self.format()
        for node in self.nodes:
            self._spawn(node)
        for node in self.nodes:
            self.wait_port(node)
        print(f"kafka: {len(self.nodes)} nodes up in {time.monotonic() - began:.1f}s", flush=True)

    def start_node(self, node_id: int, timeout_s: float = 120) -> None:
        node = self.node(node_id)
        self._spawn(node)
        self.wait_port(node, timeout_s)

    def kill(self, node_id: int) -> None:
        node = self.node(node_id)
        if node.proc is not None and node.proc.poll() is None:
            os.kill(node.proc.pid, signal.SIGCONT)
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(30)

    def stop_node(self, node_id: int, timeout_s: float = 60) -> None:
        """SIGTERM: a controlled shutdown (leaderships handed over first)."""
        node = self.node(node_id)
        if node.proc is None or node.proc.poll() is not None:
            return
        node.proc.send_signal(signal.SIGTERM)
        try:
            node.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill(node_id)

    def pause(self, node_id: int) -> None:
        pid = self.node(node_id).pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        pid = self.node(node_id).pid
        assert pid is not None
        os.kill(pid, signal.SIGCONT)

    def active_controller(self) -> int:
        """The KRaft leader as the running nodes last recorded it (quorum-state file), the
        highest epoch winning."""
        best: tuple[int, int] | None = None
        for node in self.nodes:
            if node.pid is None:
                continue
            try:
                state = json.loads(node.quorum_state.read_text())
            except (OSError, ValueError):
                continue
            leader, epoch = state.get("leaderId", -1), state.get("leaderEpoch", -1)
            if leader >= 0 and (best is None or epoch > best[1]):
                best = (leader, epoch)
        if best is None:
            raise RuntimeError("no kafka node knows the active controller")
        return best[0]

    def stop(self) -> None:
        for node in self.nodes:
            if node.pid is not None:
                os.kill(node.pid, signal.SIGCONT)  # a paused JVM cannot act on SIGTERM
                node.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.kill(node.node_id)
