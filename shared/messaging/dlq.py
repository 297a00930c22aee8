"""Dead-letter topics: send a message there, show what failed, resend it once fixed.

A consumer hands a message it gives up on to ``send_to_dlq``: the original key, value and
headers go to ``<topic>.dlq`` with ``dlq_*`` headers saying who failed, where and why.

``python -m shared.messaging.dlq show <topic>`` prints each dead letter with its error;
``python -m shared.messaging.dlq resend <topic> [--consumer NAME]`` re-publishes every dead
letter of ``<topic>.dlq`` (optionally only those one consumer gave up on) to ``<topic>``, with
its original headers. The resender commits its own offsets on the DLQ, so each dead letter is
sent back once; consumers de-duplicate by event id, so a resend never applies anything twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from shared.contracts import dlq_topic
from shared.messaging.producer import make_producer
from shared.metrics import DLQ_SENT, EVENTS_CONSUMED
from shared.settings import ServiceSettings

# The resender's consumer group on the DLQ (its id predates the command's name; kept so that
# positions already committed stay valid).
RESENDER_GROUP = "dlq-replayer"


@dataclass
class FailedMessage:
    record: ConsumerRecord[bytes, bytes]
    error: BaseException


async def send_to_dlq(producer: AIOKafkaProducer, consumer: str, failed: FailedMessage) -> None:
    """Dead-letter one message that consumer group ``consumer`` gave up on: the original key,
    value and headers, plus the error and the message's origin in ``dlq_*`` headers."""
    record, error = failed.record, failed.error
    headers = list(record.headers or ())
    headers += [
        ("dlq_error", str(error)[:2000].encode()),
        ("dlq_error_type", type(error).__name__.encode()),
        ("dlq_traceback", "".join(traceback.format_exception(error))[-4000:].encode()),
        ("dlq_consumer", consumer.encode()),
        ("dlq_original_topic", record.topic.encode()),
        ("dlq_original_partition", str(record.partition).encode()),
        ("dlq_original_offset", str(record.offset).encode()),
        ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
    ]
    await producer.send_and_wait(
        dlq_topic(record.topic), value=record.value, key=record.key, headers=headers
    )
    DLQ_SENT.labels(consumer, record.topic).inc()
    EVENTS_CONSUMED.labels(consumer, record.topic, "dead_lettered").inc()


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @property
    def consumer(self) -> str:
        return dict(self.headers).get("dlq_consumer", b"").decode()

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith("dlq_")]

    def describe(self) -> dict[str, str]:
        h = {k: v.decode(errors="replace") for k, v in self.headers}
        return {
            "offset": f"{self.partition}:{self.offset}",
            "ce_id": h.get("ce_id", ""),
            "consumer": h.get("dlq_consumer", ""),
            "error_type": h.get("dlq_error_type", ""),
            "error": h.get("dlq_error", ""),
            "failed_at": h.get("dlq_failed_at", ""),
        }


async def read_dead_letters(
    settings: ServiceSettings, topic: str, *, group: str | None, idle_ms: int = 1000
) -> tuple[AIOKafkaConsumer, list[DeadLetter]]:
    """Everything on ``<topic>.dlq`` not yet taken by ``group`` (None: read all, commit none)."""
    consumer = AIOKafkaConsumer(
        dlq_topic(topic),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    await consumer.start()
    letters: list[DeadLetter] = []
    while True:
        batch = await consumer.getmany(timeout_ms=idle_ms)
        if not batch:
            break
        for part in batch.values():
            letters.extend(
                DeadLetter(r.partition, r.offset, r.key, r.value, list(r.headers)) for r in part
            )
    return consumer, letters


async def resend(settings: ServiceSettings, topic: str, *, consumer_name: str | None = None) -> int:
    """Send dead letters back to their topic; returns how many were re-published.

    Each filter has its own resender group (its own position on the DLQ), so resending one
    consumer's dead letters never skips another's."""
    group = RESENDER_GROUP if consumer_name is None else f"{RESENDER_GROUP}-{consumer_name}"
    reader, letters = await read_dead_letters(settings, topic, group=group)
    producer: AIOKafkaProducer = make_producer(settings)
    await producer.start()
    try:
        sent = 0
        for letter in letters:
            if consumer_name is None or letter.consumer == consumer_name:
                await producer.send_and_wait(
                    topic, value=letter.value, key=letter.key, headers=letter.original_headers()
                )
                sent += 1
        if letters:  # only after everything was re-published
            await reader.commit()
        return sent
    finally:
        await producer.stop()
        await reader.stop()


async def show(settings: ServiceSettings, topic: str) -> list[dict[str, str]]:
    reader, letters = await read_dead_letters(settings, topic, group=None)
    await reader.stop()
    return [letter.describe() for letter in letters]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    show_cmd = sub.add_parser("show", help="print the dead letters of a topic")
    show_cmd.add_argument("topic")
    resend_cmd = sub.add_parser("resend", help="re-publish dead letters to their topic")
    resend_cmd.add_argument("topic")
    resend_cmd.add_argument("--consumer", help="only those this consumer group gave up on")
    args = parser.parse_args()
    settings = ServiceSettings()
    if args.command == "show":
        for row in asyncio.run(show(settings, args.topic)):
            print(json.dumps(row))
    else:
        count = asyncio.run(resend(settings, args.topic, consumer_name=args.consumer))
        print(f"{count} dead letter(s) re-published to {args.topic}")


if __name__ == "__main__":
    main()
