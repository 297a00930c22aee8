"""The Apache Kafka broker as jars: resolved with Maven from Maven Central (``pom.xml`` beside
this file) into ``~/.cache/referral-platform/kafka-<version>/libs`` once, then reused. Java and
Maven are the only things the machine needs; a clear error says which one is missing."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = os.environ.get("KAFKA_VERSION", "4.1.1")
POM = Path(__file__).with_name("pom.xml")
MIN_JAVA = 17


class KafkaSetupError(RuntimeError):
    """Java or Maven is missing, or the jars could not be resolved."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "referral-platform"


def find_java() -> str:
    """``KAFKA_JAVA``, else ``$JAVA_HOME/bin/java``, else ``java`` on PATH; at least Java 17."""
    candidates = [os.environ.get("KAFKA_JAVA")]
    if home := os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(home) / "bin" / "java"))
    candidates.append(shutil.which("java"))
    java = next((c for c in candidates if c and Path(c).exists()), None)
    if java is None:
        raise KafkaSetupError(
            "Apache Kafka needs Java 17 or newer and none was found: install a JDK "
            "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise KafkaSetupError(f"Apache Kafka 4 needs Java {MIN_JAVA}+, {java} is Java {major}")
    return java


def find_maven() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaSetupError(
            "Maven is needed once to fetch Apache Kafka from Maven Central and was not found: "
            "install it (Debian: apt-get install maven)"
        )
    return mvn


@dataclass
class KafkaDistribution:
    """The broker's jars for one Kafka version, in the cache."""

    version: str = KAFKA_VERSION

    @property
    def home(self) -> Path:
        return cache_root() / f"kafka-{self.version}"

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    def ready(self) -> bool:
        return (self.home / "resolved").exists()

    def ensure(self) -> Path:
        """Resolve the jars unless the cache already holds them; returns the libs folder."""
        if self.ready():
            return self.libs
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be resolving right now
            if not self.ready():
                self._resolve()
        return self.libs

    def _resolve(self) -> None:
        mvn = find_maven()
        partial = self.home / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        started = time.perf_counter()
        print(f"kafka: fetching Apache Kafka {self.version} from Maven Central...", flush=True)
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM),
                f"-Dkafka.version={self.version}",
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={partial}",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0 or not any(partial.glob("kafka_2.13-*.jar")):
            tail = (result.stdout + result.stderr)[-3000:]
            raise KafkaSetupError(f"resolving Apache Kafka {self.version} failed:\n{tail}")
        shutil.rmtree(self.libs, ignore_errors=True)
        partial.rename(self.libs)
        (self.home / "resolved").write_text(f"{self.version}\n")
        took = time.perf_counter() - started
        print(f"kafka: {self.version} cached in {self.home} ({took:.0f}s)", flush=True)

    def classpath(self) -> str:
        return os.pathsep.join(str(p) for p in sorted(self.ensure().glob("*.jar")))
