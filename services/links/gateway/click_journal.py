"""The click journal: append-only segment files in one folder per replica, holding every
captured click until the broker acknowledges it (then the segment is deleted). While the broker
is away the journal is the spill file; segments a previous process left are replayed at start.
See ``clicks.py`` for who writes and who sends."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from services.links.gateway.click_events import Record

log = logging.getLogger(__name__)

_SEGMENT_PREFIX = "clicks-"


@dataclass
class Segment:
    path: Path
    replay: bool  # its messages must be read back from the file (outage or previous process)
    size: int = 0
    acked_offset: int = 0
    closed: bool = False
    fh: IO[bytes] | None = None


@dataclass
class Chunk:
    """Records written to ``segment`` in one go, sent from memory; ``end_offset`` is where
    they end in the file, acknowledged once the broker has them."""

    segment: Segment
    records: list[Record] = field(default_factory=list)
    end_offset: int = 0


class ClickJournal:
    def __init__(self, folder: Path, *, segment_max_bytes: int, segment_max_age_s: float) -> None:
        self.folder = folder
        self.segment_max_bytes = segment_max_bytes
        self.segment_max_age_s = segment_max_age_s
        self.segments: list[Segment] = []
        self.current: Segment | None = None
        self.current_opened = 0.0
        self._seq = 0
        self._lock_fh: IO[bytes] | None = None

    def claim(self) -> None:
        """Lock the folder and pick up segments a previous process left behind."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.folder / ".lock", "wb")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RuntimeError(
                f"click journal {self.folder} is used by another process; give each "
                "replica its own CLICK_JOURNAL_DIR"
            ) from exc
        for path in sorted(self.folder.glob(f"{_SEGMENT_PREFIX}*.log")):
            seq = int(path.stem.removeprefix(_SEGMENT_PREFIX))
            self._seq = max(self._seq, seq)
            size = path.stat().st_size
            if size == 0:
                path.unlink()
                continue
            self.segments.append(Segment(path, replay=True, size=size, closed=True))
        if self.segments:
            log.warning(
                "replaying %d click journal segment(s) left by a previous run", len(self.segments)
            )

    def release(self) -> None:
        self.rotate()
        if self._lock_fh is not None:
            if not any(self.folder.glob(f"{_SEGMENT_PREFIX}*.log")):
                # Nothing left to replay: leave no empty folder behind (still holding the lock).
                with contextlib.suppress(OSError):
                    (self.folder / ".lock").unlink()
                    self.folder.rmdir()
            self._lock_fh.close()
            self._lock_fh = None

    def rotate(self) -> None:
        seg = self.current
        if seg is not None:
            seg.closed = True
            if seg.fh is not None:
                seg.fh.close()
                seg.fh = None
            self.current = None
            self.settle(seg)

    def for_write(self, now: float, outage: bool) -> Segment:
        """The segment to append to: a new one when the mode changed (sent from memory or
        replayed from the file), or the current one is full or old."""
        seg = self.current
        if seg is not None and (
            seg.replay != outage
            or seg.size >= self.segment_max_bytes
            or (not outage and now - self.current_opened > self.segment_max_age_s)
        ):
            self.rotate()
            seg = None
        if seg is None:
            self._seq += 1
            path = self.folder / f"{_SEGMENT_PREFIX}{self._seq:012d}.log"
            seg = Segment(path, replay=outage, fh=open(path, "ab", buffering=0))
            self.segments.append(seg)
            self.current = seg
            self.current_opened = now
        return seg

    def settle(self, seg: Segment) -> None:
        """Delete a closed segment once the broker acknowledged all of it."""
        if seg.closed and seg.acked_offset >= seg.size:
            with contextlib.suppress(FileNotFoundError):
                seg.path.unlink()
            if seg in self.segments:
                self.segments.remove(seg)

    def replay_all(self) -> None:
        for seg in self.segments:
            seg.replay = True

    def next_to_replay(self) -> Segment | None:
        return next((s for s in self.segments if s.replay), None)

    def unacked_bytes(self) -> int:
        return sum(s.size - s.acked_offset for s in self.segments)


def fsync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_records(path: Path, offset: int, limit: int) -> tuple[list[Record], int]:
    """Up to ``limit`` records from ``offset``, and the offset after them."""
    records = []
    with open(path, "rb") as fh:
        fh.seek(offset)
        while len(records) < limit:
            line = fh.readline()
            if not line.endswith(b"\n"):
                break  # end of file (or a line cut by a crash: it was never answered twice)
            offset += len(line)
            value = line[:-1]
            try:
                data = json.loads(value)
                records.append(
                    (data["click_id"].encode(), data["code"].encode(),
                     data["clicked_at"].encode(), value)
                )  # fmt: skip
            except (ValueError, KeyError, AttributeError):
                log.error("skipping an unreadable click journal line in %s", path.name)
    return records, offset
