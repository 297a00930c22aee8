"""schemathesis hooks of the API fuzz test (loaded through ``SCHEMATHESIS_HOOKS``)."""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis

# Room for the suffix within the documented maximum (shared.http.idempotency.MAX_KEY_LENGTH).
_KEY_ROOM = 255 - 33


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """A client sends a fresh Idempotency-Key with each new request. Generated keys repeat
    ("0", "a"), and the same key with another body is refused by design (422): a rule of the
    key's history, which no schema can state. A key of documented length gets a unique suffix
    and stays within that length; replays and refusals are tested in the integration tests."""
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and 1 <= len(key) <= _KEY_ROOM:
        case.headers["Idempotency-Key"] = f"{key}.{uuid.uuid4().hex}"
