"""The redirect's in-process cache: code -> :class:`CodeEntry` and program -> :class:`ProgramView`,
bounded, with a TTL backstop; events (``cache_events.py``) and this replica's own writes
invalidate it at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_MARK = "CLICKID7MARK"


def with_params(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class ProgramView:
    """What the redirect needs of the program version in force, valid until ``expires``
    (a monotonic time: the TTL, or the moment a scheduled version takes over)."""

    program_id: str
    active: bool
    destination: str
    click_param: str
    channel_param: str
    fallback: str | None
    expires: float
    # The location is prefix + click id + suffix (a fragment, if the destination has one).
    prefix: str = ""
    suffix: str = ""

    def __post_init__(self) -> None:
        marked = with_params(self.destination, {self.click_param: _MARK})
        self.prefix, _, self.suffix = marked.partition(_MARK)

    def location(self, click_id: str, extra: dict[str, str] | None) -> str:
        if not extra:
            return self.prefix + click_id + self.suffix
        return with_params(self.destination, {self.click_param: click_id, **extra})


@dataclass
class CodeEntry:
    code: str  # as stored (a vanity code matches whatever its case in the request)
    participant_id: str
    program_id: str
    active: bool  # False once the participant is erased
    expires: float


class RedirectCache:
    """code -> CodeEntry and program id -> ProgramView, bounded (oldest entries go first).
    Entries expire after ``ttl_s`` as a backstop; events invalidate them at once."""

    def __init__(self, max_codes: int = 200_000, ttl_s: float = 300.0, miss_ttl_s: float = 5.0):
        self.max_codes = max_codes
        self.ttl_s = ttl_s
        self.miss_ttl_s = miss_ttl_s
        self.codes: dict[str, CodeEntry | float] = {}  # a float: unknown until that time
        self.programs: dict[str, ProgramView] = {}

    def put_code(self, code: str, entry: CodeEntry | float) -> None:
        codes = self.codes
        if len(codes) >= self.max_codes:
            # Insertion order: drop the oldest tenth in one go.
            for stale in list(iter(codes))[: self.max_codes // 10 or 1]:
                del codes[stale]
        codes[code] = entry

    def forget_code(self, code: str) -> None:
        self.codes.pop(code, None)

    def forget_program(self, program_id: str) -> None:
        self.programs.pop(program_id, None)

    def forget_participant(self, participant_id: str) -> None:
        for code, entry in list(self.codes.items()):
            if isinstance(entry, CodeEntry) and entry.participant_id == participant_id:
                del self.codes[code]

    def clear(self) -> None:
        self.codes.clear()
        self.programs.clear()


def _cache_of(state: Any) -> RedirectCache | None:
    return getattr(state, "cache", None)


def forget_program(state: Any, program_id: str) -> None:
    """This replica forgets at once; the others learn it from ``program.published``.
    ``state`` is the app's state (no cache there in a process without the gateway)."""
    if (cache := _cache_of(state)) is not None:
        cache.forget_program(program_id)


def forget_code(state: Any, code: str) -> None:
    """A "no such code" this replica remembered is wrong once the code is enrolled."""
    if (cache := _cache_of(state)) is not None:
        cache.forget_code(code)


def forget_participant(state: Any, participant_id: str) -> None:
    if (cache := _cache_of(state)) is not None:
        cache.forget_participant(participant_id)
