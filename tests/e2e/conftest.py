"""The whole system as real processes: embedded Postgres and broker, four databases,
migrations, topics and the four services, started once for the e2e session."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.journey import Urls
from devstack.stack import Stack, StackConfig
from tests.conftest import OUTPUT_DIR


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="refplat-e2e-"))
    root.chmod(0o755)
    config = StackConfig.for_tests(root)
    config.log_dir = OUTPUT_DIR / "e2e-logs"
    shutil.rmtree(config.log_dir, ignore_errors=True)
    stack = Stack(config)
    try:
        stack.start_infra()
        asyncio.run(stack.prepare())
        stack.start_services()
        asyncio.run(stack.wait_ready(timeout_s=90))
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def urls(stack: Stack) -> Urls:
    return Urls.local(stack.config.ports)
