"""Broker faults of the chaos run that need more than a signal.

Restarting the embedded broker loses its whole log (it keeps it in memory): topics, messages,
consumer groups and their offsets. Recovery is what an operator does after a broker lost data:
once the broker is back, replay every service's outbox from the restart time minus a margin
(``python -m shared.messaging.republish``, which also recreates missing topics). Consumers start
from the earliest offset of the new, empty log and drop what they had already applied by event
id.

The replay waits until every consumer group has rejoined the new broker. Until a consumer
notices the restart (its next heartbeat), it keeps fetching from its old positions; if the new
log has already grown past one of them, the messages below it are skipped. After the rejoin it
resumes from the new broker's committed offsets, so everything skipped was published before the
replay, and the replay publishes it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from devstack.stack import Stack
from shared.contracts import TOPICS, dlq_topic
from shared.messaging.consumer import stop_quietly
from shared.migrate import SERVICES

REPLAY_MARGIN_S = 60.0
# The consumer groups the invariants depend on (named after their services). Links' groups
# (`links`, `links-clicks`) feed only its analytics read model, which the run does not check.
CONSUMER_GROUPS = ("attribution", "rewards", "notifications")


async def _group_state(bootstrap: str, group: str) -> tuple[str, int] | None:
    """State and member count of a consumer group, None when it cannot be told (Tansu answers
    some describes with a reply aiokafka cannot decode)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        [response] = await admin.describe_consumer_groups([group])
        [(error, _, state, _, _, members, *_)] = response.groups
        return (state, len(members)) if error == 0 and state not in ("Dead", "") else None
    except (KafkaError, OSError, ValueError):
        return None
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def _wait_rejoined(bootstrap: str, groups: list[str], timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    waiting = list(groups)
    while waiting:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"consumer groups {waiting} did not rejoin the new broker")
        state = await _group_state(bootstrap, waiting[0])
        if state is not None and state[0] == "Stable" and state[1]:
            waiting.pop(0)
        else:
            await asyncio.sleep(0.2)


async def replay_outbox(stack: Stack, service: str, since: datetime) -> int:
    """Run the operator's replay command against one service's database; returns the count."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.messaging.republish",
        "--since",
        since.isoformat(),
        env=stack.service_env(service),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace").strip()
    if proc.returncode != 0:
        raise RuntimeError(f"replay for {service} failed ({proc.returncode}): {text[-2000:]}")
    # "<n> topic(s) created; <m> event(s) handed back to the relay"
    return int(text.splitlines()[-1].split("; ")[1].split()[0])


async def restart_broker_and_replay(stack: Stack, margin_s: float = REPLAY_MARGIN_S) -> str:
    """Crash the broker, start an empty one, wait for the consumers, replay every outbox."""
    groups = list(CONSUMER_GROUPS)
    restarted_at = datetime.now(UTC)
    await stack.restart_broker()
    await _wait_rejoined(stack.bootstrap, groups, timeout_s=90)
    since = restarted_at - timedelta(seconds=margin_s)
    counts = await asyncio.gather(*(replay_outbox(stack, s, since) for s in SERVICES))
    return (
        f"broker restarted (log lost), {len(groups)} consumer group(s) rejoined, "
        f"{sum(counts)} event(s) replayed since restart-{margin_s:.0f}s"
    )


class DeadLetterWatcher:
    """Records the ce_id of every dead letter for the whole run.

    A broker restart empties the DLQ topics, so reading them once at the end would forget what
    was dead-lettered before. The watcher reads them as they are written, and re-reads each new
    log from its start after a restart; the run compares everything it saw with what it injected.
    Its blind spot: a dead letter written in the last poll interval (0.1 s) before a broker crash.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.ids: set[str] = set()
        self._new_broker = asyncio.Event()

    def broker_restarted(self) -> None:
        self._new_broker.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._new_broker.clear()
            consumer = AIOKafkaConsumer(
                *[dlq_topic(t) for t in TOPICS],
                bootstrap_servers=self.bootstrap,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                group_id=None,
                fetch_max_wait_ms=20,
            )
            try:
                await consumer.start()
                while not stop.is_set() and not self._new_broker.is_set():
                    batch = await consumer.getmany(timeout_ms=100)
                    for records in batch.values():
                        self.ids.update(
                            dict(r.headers).get("ce_id", b"?").decode() for r in records
                        )
            except (KafkaError, OSError):
                await asyncio.sleep(0.2)
            finally:
                await stop_quietly(consumer)
