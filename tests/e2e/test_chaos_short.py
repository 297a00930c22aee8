"""The short chaos run inside `make test`: one seed, a few faults, at least one of them a broker
restart with its outbox replay (the long run is `make chaos`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from bench.chaos import chaos_run


@pytest.fixture
def tmp_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="refplat-chaos-test-"))
    root.chmod(0o755)  # the embedded Postgres may run as another user
    return root


async def test_faults_lose_nothing_and_pay_nothing_twice(tmp_root: Path) -> None:
    root = tmp_root
    try:
        result = await chaos_run(11, faults=4, journeys=12, root=root, require=("restart_broker",))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nchaos seed={result.seed} faults={result.faults}")
    assert len(result.faults) == 4
    assert "restart_broker" in result.kinds
    assert result.accepted == 12
    assert result.injected_ids
    assert result.violations == []
