"""Query parameters that name values from a fixed set: given once, repeated (``?x=a&x=b``) or
comma-separated (``?x=a,b``). The route states the set in its schema with
``shared.http.openapi.some_of``, so a name the API does not know is refused (422 naming the
parameter) before the route runs, rather than matching nothing."""

from __future__ import annotations


def listed(values: list[str] | None) -> list[str]:
    """The distinct names asked for, in the order given (empty: none asked for)."""
    names = (name.strip() for value in values or () for name in value.split(","))
    return list(dict.fromkeys(name for name in names if name))
