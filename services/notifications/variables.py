"""The variables templates see: sample values of each trigger (previews, and what each
template can use), and amounts formatted for the reader. Pure functions."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, format_decimal, get_currency_precision, list_currencies

from services.notifications.catalog import language_of

_CURRENCIES = frozenset(list_currencies())


def babel_locale(locale: str | None) -> Locale:
    for candidate in ((locale or "en").replace("-", "_"), language_of(locale), "en"):
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse("en")


@functools.lru_cache(maxsize=4096)
def format_amount_for(amount: int | None, unit: str | None, locale: str | None) -> str:
    """Minor units as a reader of ``locale`` expects them: '$20.00', '20,00 €', 'US$20.00'.
    Cached: pure, and babel's formatting costs more than the rest of a message's values."""
    if amount is None or unit is None:
        return ""
    loc = babel_locale(locale)
    if unit in _CURRENCIES:
        value = Decimal(amount).scaleb(-get_currency_precision(unit))
        return format_currency(value, unit, locale=loc)
    return f"{format_decimal(amount, locale=loc)} {unit}"


# Sample variables per trigger, for previews (and to document what each template can use).
SAMPLES: dict[str, dict[str, Any]] = {
    "welcome": {"name": "Ada", "link_url": "https://ref.example.com/r/ABCDEFGH23"},
    "referral_signed_up": {"name": "Ada", "link_url": "https://ref.example.com/r/ABCDEFGH23"},
    "referral_converted": {
        "name": "Ada",
        "order_amount": (4999, "USD"),
        "link_url": "https://ref.example.com/r/ABCDEFGH23",
    },
    "reward_issued": {"name": "Ada", "amount": (2000, "USD"), "coupon_code": None},
    "reward_available": {"name": "Ada", "amount": (2000, "USD"), "coupon_code": "SAVE20-XK2P"},
    "milestone_reached": {"name": "Ada", "threshold": 5, "perk": "Founders' edition"},
    "milestone_nudge": {
        "name": "Ada",
        "converted": 4,
        "threshold": 5,
        "link_url": "https://ref.example.com/r/ABCDEFGH23",
    },
    "share_reminder": {"name": "Ada", "link_url": "https://ref.example.com/r/ABCDEFGH23"},
    "reward_failed": {
        "reward_id": "00000000-0000-0000-0000-000000000001",
        "amount": (2000, "USD"),
        "side": "referrer",
        "reason": "coupon pool empty",
    },
    "referral_flagged": {
        "referral_id": "00000000-0000-0000-0000-000000000002",
        "rules": "self_referral",
    },
}


def _is_amount(value: Any) -> bool:
    # A preview's variables come from the caller: [true, "USD"] or [1, {}] are not amounts.
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and type(value[0]) is int
        and isinstance(value[1], str)
    )


def localize(variables: dict[str, Any], locale: str | None) -> dict[str, Any]:
    """Amounts travel as (minor units, unit) pairs and are formatted for the reader."""
    out: dict[str, Any] = {}
    for key, value in variables.items():
        if _is_amount(value):
            out[key] = format_amount_for(value[0], value[1], locale)
        else:
            out[key] = value
    return out
