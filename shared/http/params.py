"""Query parameters that name values from a fixed set: given once, repeated (``?x=a&x=b``) or
comma-separated (``?x=a,b``); a value the API does not know is refused (422 naming the
parameter) rather than matching nothing."""

from __future__ import annotations

from collections.abc import Collection

from shared.http.problems import Problem


def known_values(values: list[str] | None, known: Collection[str], field: str) -> list[str]:
    """The distinct values asked for, in the order given (empty: none asked for)."""
    asked: list[str] = []
    for value in values or ():
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name not in known:
                raise Problem(
                    422,
                    "validation-error",
                    f"{field}: unknown value {name[:64]!r}; one of {', '.join(sorted(known))}",
                    field=field,
                    errors=[{"field": field, "message": f"unknown value {name[:64]!r}"}],
                )
            if name not in asked:
                asked.append(name)
    return asked
