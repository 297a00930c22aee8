"""One Apache Kafka KRaft node (combined broker+controller) as a child process: its
configuration, storage format command, start, and the signals a failover run sends it."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devstack.embedded import port_open

HEAP_MB = int(os.environ.get("KAFKA_HEAP_MB", "512"))
# For short-lived JVMs and for test runs, where starting fast matters more than peak speed:
# the client compiler only, and one GC thread.
QUICK_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
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
    jvm_options: tuple[str, ...] = ()
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

    def write_config(self, voters: str, size: int, partitions: int) -> None:
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
            # For topics created on first use (tests rely on it, as they do on Tansu).
            "num.partitions": partitions,
            # Local runs start many short-lived groups: no 3 s wait before their first join.
            "group.initial.rebalance.delay.ms": 0,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.root / "log4j2.properties").write_text(_LOG4J2.format(log=self.log_path))

    def _java(
        self, java: str, classpath: str, main: str, *args: str, quick: bool = False
    ) -> list[str]:
        # ``jvm_options`` (e.g. QUICK_JVM for tests) replace the default collector settings.
        default = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20")
        options = QUICK_JVM if quick else (self.jvm_options or default)
        return [
            java,
            f"-Xmx{self.heap_mb}m",
            "-Xms64m",
            *options,
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
            # One token: an id starting with "-" (1 in 64) would read as an option otherwise.
            f"--cluster-id={cluster_id}",
            "--config",
            str(self.config_path),
            "--ignore-formatted",
            quick=True,
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
