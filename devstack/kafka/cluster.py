"""Apache Kafka in KRaft mode on loopback: ``KafkaCluster(root, size=1)`` is one combined
broker+controller node, ``size=3`` three combined nodes that are each other's controller quorum.
Nodes are child processes (``kafka.Kafka`` on the cached jars, see ``dist``) that can be killed,
paused, resumed and restarted one by one, keeping their data, for failover runs."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from devstack.embedded import free_port, port_open
from devstack.kafka.dist import KafkaDistribution, find_java
from devstack.kafka.node import HEAP_MB, QUICK_JVM, KafkaNode, new_cluster_id

__all__ = ["QUICK_JVM", "KafkaCluster", "KafkaNode"]

# Seconds a node may take to serve: about 20 on two quiet cores, minutes on a crowded machine.
START_TIMEOUT_S = float(os.environ.get("KAFKA_START_TIMEOUT_S", "300"))


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
        default_partitions: int = 6,
        jvm_options: tuple[str, ...] = (),
    ) -> None:
        if size < 1:
            raise ValueError("a cluster has at least one node")
        self.root = root.resolve()
        self.size = size
        self.quiet = quiet
        self.default_partitions = default_partitions
        self.distribution = distribution or KafkaDistribution()
        self.cluster_id = new_cluster_id()
        self.nodes = [
            KafkaNode(i, self.root / f"node-{i}", free_port(), free_port(), heap_mb, jvm_options)
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

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Resolve the jars (first run only), format every node and start them all; returns
        when every node serves as a broker. Prints how long it took."""
        self._java = find_java()
        self._classpath = self.distribution.classpath()
        started = time.perf_counter()
        for node in self.nodes:  # new ports and cluster id each time: start from empty disks
            shutil.rmtree(node.root, ignore_errors=True)
            node.write_config(self.voters, self.size, self.default_partitions)
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

    def start_node(self, node_id: int, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start a killed or stopped node again on its data and ports."""
        node = self.node(node_id)
        node.start(self._java, self._classpath)
        node.wait_started(time.monotonic() + timeout_s)

    def stop_node(self, node_id: int) -> None:
        self.node(node_id).stop()

    def restart_node(self, node_id: int, timeout_s: float = START_TIMEOUT_S) -> None:
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
                *QUICK_JVM,
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
