"""Finding the value Postgres refused: a request that passed validation can still carry what
the database cannot store (a NUL character in text or JSON, an integer beyond ``bigint``).
When the database says so, the request's own JSON body names the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


def _why(value: Any, bits: int) -> str | None:
    if isinstance(value, str) and "\x00" in value:
        return "contains a NUL character, which cannot be stored"
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if not low <= value <= high:
            return f"is beyond the storable range ({low}..{high})"
    return None


def _walk(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key).replace("\x00", "\\u0000")  # the field name itself stays readable
            # A key is stored too (JSON columns): a NUL in it is named by the key's path.
            yield (*path, name), str(key)
            yield from _walk(item, (*path, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, str(index)))
    else:
        yield path, value


def unstorable_field(body: Any, int_bits: int = 64) -> tuple[str, str] | None:
    """(field path, what is wrong) of the first value in ``body`` that Postgres cannot store
    (integers in a column of ``int_bits``); the path is dotted as in validation errors
    (``codes.0``), ``body`` for the body itself."""
    # A list at the top is named from "body" (``body.1``), never by a bare index.
    for path, value in _walk(body, ("body",) if isinstance(body, list) else ()):
        if (why := _why(value, int_bits)) is not None:
            return ".".join(path) or "body", why
    return None
