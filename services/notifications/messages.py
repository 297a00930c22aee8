"""How amounts read, and the template variables of each trigger. Pure functions."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, format_decimal, get_currency_precision, list_currencies

from services.notifications.catalog import language_of
from shared.contracts import ParticipantEnrolled, RewardIssued

_CURRENCIES = frozenset(list_currencies())


@dataclass(frozen=True)
class Message:
    kind: str
    title: str
    body: str


def format_amount(amount: int, unit: str) -> str:
    """Minor units to text: ISO 4217 currencies by their own decimals, other units as is."""
    if unit in _CURRENCIES:
        digits = get_currency_precision(unit)
        return f"{Decimal(amount).scaleb(-digits):.{digits}f} {unit}"
    return f"{amount} {unit}"


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


def welcome(event: ParticipantEnrolled) -> Message:
    """The English welcome, as the defaults render it (kept for callers without templates)."""
    return Message(
        "welcome",
        "Welcome to the referral program",
        f"Share your link {event.link_url} with friends.",
    )


def reward_earned(event: RewardIssued) -> Message:
    return Message(
        "reward_issued",
        "You earned a reward",
        f"You earned {format_amount(event.amount, event.unit)} for a referral.",
    )


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


def localize(variables: dict[str, Any], locale: str | None) -> dict[str, Any]:
    """Amounts travel as (minor units, unit) pairs and are formatted for the reader."""
    out: dict[str, Any] = {}
    for key, value in variables.items():
        if isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[0], int):
            out[key] = format_amount_for(value[0], value[1], locale)
        else:
            out[key] = value
    return out
