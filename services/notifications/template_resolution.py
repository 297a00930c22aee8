"""Which template a reader gets, most specific first: the program's template in the reader's
locale (their variant, then any variant), the shipped default in the reader's language, then
the program's English, then the shipped English. Pure."""

from __future__ import annotations

from services.notifications.catalog import DEFAULTS, default_template, locale_chain
from services.notifications.render import Source


def choose_template(
    found: dict[tuple[str, str], Source], trigger: str, locale: str | None, variant: str | None
) -> Source:
    """The resolution over the program's templates of this trigger, keyed by (locale,
    variant); keys outside the reader's locale chain and variant are ignored."""
    chain = locale_chain(locale)

    def own(locales: list[str]) -> Source | None:
        for loc in locales:
            for var in ([variant] if variant else []) + [""]:
                if (source := found.get((loc, var))) is not None:
                    return source
        return None

    native = [loc for loc in chain if loc != "en"]
    if (source := own(native)) is not None:
        return source
    if any(trigger in DEFAULTS.get(loc, {}) for loc in native):
        return Source(*default_template(trigger, locale))
    if (source := own(["en"])) is not None:
        return source
    return Source(*default_template(trigger, "en"))
