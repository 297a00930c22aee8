"""``python -m devstack.kafka [--nodes 3]``: Apache Kafka on loopback until Ctrl-C, for running
anything against it with ``KAFKA_BOOTSTRAP_SERVERS``. ``--fetch`` only fills the jar cache."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from devstack.kafka.cluster import KafkaCluster
from devstack.kafka.dist import KafkaDistribution, KafkaSetupError, find_java


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.kafka")
    parser.add_argument("--nodes", type=int, default=1, help="1, or 3 for a replicated cluster")
    parser.add_argument("--fetch", action="store_true", help="resolve the jars and exit")
    args = parser.parse_args()
    try:
        find_java()
        if args.fetch:
            print(KafkaDistribution().ensure())
            return 0
        root = Path(tempfile.mkdtemp(prefix="refplat-kafka-"))
        cluster = KafkaCluster(root, args.nodes)
        cluster.start()
    except KafkaSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print(f"KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap_servers}  (Ctrl-C stops)", flush=True)
    try:
        while not stopping:
            time.sleep(0.5)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
