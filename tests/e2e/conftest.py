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
from tests.integration.notifications.receivers import SmtpServer


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server in the test process; notifications sends to it. Short retry and
    reminder timings (a reminder "day" is 5 s) let the e2e tests see retries and reminders."""
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


def _notifications_env(smtp: SmtpServer) -> dict[str, str]:
    return {
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "NOTIFY_RETRY_SCHEDULE_S": "[0.3, 0.3, 0.5, 1, 1, 2]",
        "NOTIFY_WEBHOOK_DISABLE_AFTER": "3",
        "NOTIFY_REMINDER_DAY_S": "5",
        "NOTIFY_SENDER_POLL_INTERVAL_S": "0.1",
        "NOTIFY_SCHEDULER_POLL_INTERVAL_S": "0.2",
        "NOTIFY_WEBHOOK_TIMEOUT_S": "3",
    }


@pytest.fixture(scope="session")
def stack(smtp_server: SmtpServer) -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="refplat-e2e-"))
    root.chmod(0o755)
    config = StackConfig.for_tests(root)
    config.extra_env.update(_notifications_env(smtp_server))
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
