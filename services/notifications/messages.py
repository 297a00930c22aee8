"""What each trigger says. Pure functions of the event (templates come with their issue)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import get_currency_precision, list_currencies

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


def welcome(event: ParticipantEnrolled) -> Message:
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
