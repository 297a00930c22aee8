"""The short chaos runs inside `make test` (the long ones are `make chaos`):

- on the embedded broker: one seed, a few faults, at least one of them a broker restart with its
  outbox replay;
- on a three-node Apache Kafka cluster: one seed with each failover fault once (leader kill,
  controller kill, broker pause, rolling broker restart, rolling service restart) and no replay.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.chaos import chaos_run
from bench.chaos_kafka import KINDS, cluster_chaos_run
from bench.chaos_kafka_probe import GROUPS


@pytest.fixture
def tmp_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="refplat-chaos-test-"))
    root.chmod(0o755)  # the embedded Postgres may run as another user
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_faults_lose_nothing_and_pay_nothing_twice(tmp_root: Path) -> None:
    result = await chaos_run(11, faults=4, journeys=12, root=tmp_root, require=("restart_broker",))
    print(f"\nchaos seed={result.seed} faults={result.faults}")
    assert len(result.faults) == 4
    assert "restart_broker" in result.kinds
    assert result.accepted == 12
    assert result.injected_ids
    assert result.violations == []


async def test_kafka_failover_loses_nothing_without_replay(tmp_root: Path) -> None:
    """One replica per service and three partitions per topic (each broker still leads some of
    every topic) keep it short: each node restart loads every partition, and recovers each after
    a SIGKILL. `make chaos ARGS="--broker kafka-cluster"` runs two replicas and six partitions
    over many seeds."""
    result = await cluster_chaos_run(
        3, faults=len(KINDS), root=tmp_root, per_service=1, partitions=3
    )
    print(f"\nchaos-kafka seed={result.seed} accepted={result.accepted}")
    for report in result.reports:
        print(f"  {report.line()}")
    assert result.violations == []
    assert sorted(result.kinds) == sorted(KINDS)
    assert result.accepted > 0 and result.clicks_answered > 0
    assert result.clicks_stored == result.clicks_answered
    assert result.injected_ids
    for report in result.reports:
        assert set(report.resume_s) == set(GROUPS)
        assert all(seconds is not None for seconds in report.resume_s.values()), report.what
