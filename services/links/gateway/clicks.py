"""Click capture off the redirect path. Clicks skip the outbox: they are too many to write
to Postgres on the redirect path, so they are buffered, journaled and sent in batches.

The redirect only appends a small tuple to an in-memory deque. Two background tasks do the
rest:

- the *writer* turns the tuples into ``link.clicked`` messages (visitor hash, unique flag, bot
  check, CloudEvents headers) and appends them to a local append-only **journal** segment, then
  hands them to the sender;
- the *sender* publishes them in per-partition batches (``acks=all``) and, once a segment is
  fully acknowledged, deletes it.

When the broker does not acknowledge within ``send_timeout_s`` the sender enters *outage*: it
stops holding messages in memory (they are in the journal: that is the spill file), the writer
keeps appending, and the sender probes by replaying the oldest segment with backoff. When a
replay is acknowledged the broker is back; every segment is replayed, then normal sending
resumes. Segments left by a previous process are replayed at start. SIGTERM drains the deque
into the journal and sends what it can; what it cannot stays in the journal for the next start.

Loss window: a hard crash (SIGKILL, OOM) loses only the clicks still in the deque, i.e. answered
since the writer last ran (normally within one event-loop turn); the journal is in the page
cache as soon as it is written and fsynced every ``fsync_interval_s`` for power loss. Replays can
publish a click twice; its ``ce_id`` is its click id, so every consumer's inbox drops the copy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from prometheus_client import Counter, Gauge

from services.links.gateway.click_events import (
    TOPIC,
    Click,
    ClickClock,
    Record,
    encode_value,
    headers_for,
)
from services.links.gateway.click_journal import (
    Chunk,
    ClickJournal,
    fsync_and_close,
    read_records,
)
from services.links.gateway.visitors import (
    BotDetector,
    UniqueClicks,
    VisitorHasher,
    agent_and_prefetch,
    non_attributable_reason,
)
from shared.aio import sleep_unless

log = logging.getLogger(__name__)

CLICKS_CAPTURED = Counter("clicks_captured_total", "Clicks handed to the click buffer")
CLICKS_BUFFERED = Gauge("clicks_buffered", "Clicks captured but not yet acknowledged by the broker")
CLICKS_PUBLISHED = Counter("clicks_published_total", "Clicks acknowledged on link.clicked")
CLICKS_DROPPED = Counter("clicks_dropped_total", "Clicks dropped because the buffer was full")
CLICKS_SPILLED = Counter("clicks_spilled_total", "Clicks written to the spill file in an outage")
CLICKS_REPLAYED = Counter("clicks_replayed_total", "Clicks published from the spill file")
CLICKS_SEND_FAILURES = Counter("clicks_send_failures_total", "Failed click batch sends")
CLICKS_SPILL_BYTES = Gauge("clicks_spill_bytes", "Bytes of click journal not yet acknowledged")
BROKER_OUTAGE = Gauge("clicks_broker_outage", "1 while clicks go to the spill file only")


class ClickCapture:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        journal_dir: Path,
        hasher: VisitorHasher,
        bots: BotDetector,
        unique: UniqueClicks | None = None,
        max_buffer: int = 100_000,
        batch_size: int = 2000,
        send_timeout_s: float = 2.0,
        segment_max_bytes: int = 32 * 1024 * 1024,
        segment_max_age_s: float = 2.0,
        fsync_interval_s: float = 1.0,
        max_backoff_s: float = 2.0,
        max_in_flight: int = 4,
    ) -> None:
        self.producer = producer
        self.journal = ClickJournal(
            journal_dir, segment_max_bytes=segment_max_bytes, segment_max_age_s=segment_max_age_s
        )
        self.hasher = hasher
        self.bots = bots
        self.unique = unique or UniqueClicks()
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.send_timeout_s = send_timeout_s
        self.fsync_interval_s = fsync_interval_s
        self.max_backoff_s = max_backoff_s
        self.max_in_flight = max_in_flight
        self.outage = False
        self.dropped = 0  # counted on the hot path, exported by the writer
        self._dropped_exported = 0
        # The redirect appends to ``buffer`` directly (see Redirector) and calls ``wake()``
        # only when the writer is ``idle``.
        self.buffer: collections.deque[Click] = collections.deque()
        self.idle = True
        self._wake = asyncio.Event()
        self._send_wake = asyncio.Event()
        self._queue: collections.deque[Chunk] = collections.deque()
        self._queued = 0
        self._inflight: collections.deque[tuple[list[Chunk], int, asyncio.Future[bool]]] = (
            collections.deque()
        )
        self._writer_done = asyncio.Event()
        self._partitions: list[int] = []
        self._partition_of: dict[bytes, int] = {}
        self._last_fsync = 0.0
        self._fsync: asyncio.Future[None] | None = None
        self._clock = ClickClock()

    # --- the hot path ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.buffer) + self._queued + sum(n for _, n, _ in self._inflight)

    # --- journal ---------------------------------------------------------------------------

    def open(self) -> None:
        """Claim the journal folder and pick up segments a previous process left behind."""
        self.journal.claim()
        self._update_gauges()

    def _update_gauges(self) -> None:
        CLICKS_SPILL_BYTES.set(self.journal.unacked_bytes())
        CLICKS_BUFFERED.set(len(self))
        BROKER_OUTAGE.set(1 if self.outage else 0)

    # --- writer ----------------------------------------------------------------------------

    async def run_writer(self, stop: asyncio.Event, interval_s: float = 0.002) -> None:
        """Under load it wakes every ``interval_s`` (so the redirect never has to wake it);
        when the buffer was empty it sleeps until the next click (or a second)."""
        try:
            while True:
                if self.buffer:
                    self.write_pending()
                    if self.buffer:
                        await asyncio.sleep(0)  # more than a chunk: serve requests, go on
                        continue
                    await asyncio.sleep(interval_s)
                    self._housekeeping(time.monotonic())
                    continue
                if stop.is_set():
                    break
                self.idle = True
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                self.idle = False
                self._housekeeping(time.monotonic())
        finally:
            while self.write_pending():
                pass
            self.journal.rotate()
            self._writer_done.set()

    def wake(self) -> None:
        self.idle = False
        self._wake.set()

    def write_pending(self) -> int:
        """Encode what the redirect buffered and append it to the journal (synchronous)."""
        buf = self.buffer
        n = min(len(buf), self.batch_size)
        if n == 0:
            return 0
        now = time.monotonic()
        wall_offset = time.time() - now
        records = []
        lines = []
        visitor_of, bots, unique = self.hasher.visitor, self.bots, self.unique
        stamp = self._clock.stamp
        for _ in range(n):
            click = buf.popleft()
            user_agent, prefetch = agent_and_prefetch(click[6])
            ts = click[4] + wall_offset
            visitor = visitor_of(ts, click[5], user_agent)
            reason = non_attributable_reason(click[7], prefetch, user_agent, bots)
            when = stamp(ts)
            value = encode_value(
                click,
                when=when,
                visitor=visitor,
                unique=unique.first_in_window(visitor, click[1], click[4]),
                reason=reason,
            )
            lines.append(value)
            records.append((click[0].encode(), click[1].encode(), when.encode(), value.encode()))
        lines.append("")
        data = "\n".join(lines).encode()
        CLICKS_CAPTURED.inc(n)
        try:
            seg = self.journal.for_write(now, self.outage)
            assert seg.fh is not None
            seg.fh.write(data)
        except OSError as exc:  # a full or broken disk: these clicks can only be dropped
            log.error("click journal write failed, %d clicks dropped: %r", n, exc)
            CLICKS_DROPPED.inc(n)
            self.journal.rotate()
            return n
        seg.size += len(data)
        if seg.replay:
            CLICKS_SPILLED.inc(n)
        else:
            self._queue.append(Chunk(seg, records, seg.size))
            self._queued += n
            self._send_wake.set()
        return n

    def _housekeeping(self, now: float) -> None:
        if self.dropped != self._dropped_exported:
            CLICKS_DROPPED.inc(self.dropped - self._dropped_exported)
            self._dropped_exported = self.dropped
        seg = self.journal.current
        if (
            seg is not None
            and not self.outage
            and now - self.journal.current_opened > self.journal.segment_max_age_s
        ):
            self.journal.rotate()
        seg = self.journal.current
        if (
            seg is not None
            and seg.fh is not None
            and now - self._last_fsync > self.fsync_interval_s
            and self._fsync is None
        ):
            # For power loss; in a thread, as fsync can block for long on a busy disk.
            self._last_fsync = now
            self._fsync = asyncio.ensure_future(
                asyncio.to_thread(fsync_and_close, os.dup(seg.fh.fileno()))
            )
            self._fsync.add_done_callback(self._fsync_done)
        self._update_gauges()

    def _fsync_done(self, _: object) -> None:
        self._fsync = None

    # --- sender ----------------------------------------------------------------------------

    async def run_sender(self, stop: asyncio.Event, drain_timeout_s: float = 8.0) -> None:
        backoff = 0.1
        deadline: float | None = None
        while True:
            if stop.is_set():
                if deadline is None:
                    deadline = time.monotonic() + drain_timeout_s
                if (
                    self._writer_done.is_set()
                    and not self._queue
                    and not self.journal.segments
                    and not self._inflight
                ):
                    break
                if time.monotonic() > deadline:
                    log.error("click drain incomplete; the journal keeps the rest for next start")
                    break
            if self.outage:
                if await sleep_unless(stop, backoff) and deadline is None:
                    continue
                backoff = min(backoff * 2, self.max_backoff_s)
                if await self._replay_one_chunk():
                    log.warning("broker is back: replaying the click spill file")
                    self.outage = False
                    self.journal.rotate()  # new clicks go to a fresh segment, sent from memory
                    backoff = 0.1
                self._update_gauges()
                continue
            if self._queue or self._inflight:
                await self._send_queued()
                continue
            if self.journal.next_to_replay() is not None:
                if not await self._replay_one_chunk():
                    self._enter_outage()
                continue
            if stop.is_set():
                await asyncio.sleep(0.005)  # the writer is finishing
                continue
            self._send_wake.clear()
            waiter = asyncio.ensure_future(self._send_wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    async def _send_queued(self) -> None:
        """Keep up to ``max_in_flight`` sends going; settle them oldest first, so that a
        segment's acknowledged offset only ever covers a prefix of it."""
        while self._queue and len(self._inflight) < self.max_in_flight:
            chunks = []
            count = 0
            while self._queue and count < self.batch_size:
                chunk = self._queue.popleft()
                chunks.append(chunk)
                count += len(chunk.records)
            self._queued -= count
            send = asyncio.ensure_future(self._send([r for c in chunks for r in c.records]))
            self._inflight.append((chunks, count, send))
        chunks, count, send = self._inflight[0]
        ok = await send
        self._inflight.popleft()
        if ok:
            for c in chunks:
                c.segment.acked_offset = c.end_offset
                self.journal.settle(c.segment)
            CLICKS_PUBLISHED.inc(count)
        else:
            self._enter_outage()

    def _enter_outage(self) -> None:
        log.warning("broker unavailable: clicks go to the spill file until it is back")
        CLICKS_SEND_FAILURES.inc()
        self.outage = True
        for _, _, send in self._inflight:
            send.cancel()
        self._inflight.clear()
        self._queue.clear()
        self._queued = 0
        self.journal.replay_all()
        self._update_gauges()

    async def _replay_one_chunk(self) -> bool:
        """Send the next unacknowledged records of the oldest segment; False on failure."""
        seg = self.journal.next_to_replay()
        if seg is None:
            return True
        if seg is self.journal.current:
            self.journal.rotate()
            if seg not in self.journal.segments:
                return True
        records, end = read_records(seg.path, seg.acked_offset, self.batch_size)
        if records and not await self._send(records):
            return False
        seg.acked_offset = end if records else seg.size
        CLICKS_REPLAYED.inc(len(records))
        CLICKS_PUBLISHED.inc(len(records))
        self.journal.settle(seg)
        return True

    async def _send(self, records: list[Record]) -> bool:
        try:
            async with asyncio.timeout(self.send_timeout_s):
                await self._send_batches(records)
            return True
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("click batch not acknowledged: %r", exc)
            return False

    async def _send_batches(self, records: list[Record]) -> None:
        if not self._partitions:
            self._partitions = sorted(await self.producer.partitions_for(TOPIC))
        producer = self.producer
        open_batches: dict[int, Any] = {}
        full: list[tuple[int, Any]] = []
        for ce_id, key, when, value in records:
            partition = self._partition(key)
            batch = open_batches.get(partition)
            if batch is None:
                batch = open_batches[partition] = producer.create_batch()
            headers = headers_for(ce_id, when)
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                full.append((partition, batch))
                batch = open_batches[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=headers)
        full.extend(open_batches.items())
        futures = [await producer.send_batch(b, TOPIC, partition=p) for p, b in full]
        await asyncio.gather(*futures)

    def _partition(self, key: bytes) -> int:
        """The default Kafka partitioner (murmur2), so clicks stay keyed by code."""
        p = self._partition_of.get(key)
        if p is None:
            if len(self._partition_of) > 100_000:
                self._partition_of.clear()
            parts = self._partitions
            p = self._partition_of[key] = parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)]
        return p

    def close(self) -> None:
        self.journal.release()
