"""What notifications say, and how amounts read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.notifications.messages import format_amount, format_amount_for, reward_earned, welcome
from shared.contracts import ParticipantEnrolled, RewardIssued

NOW = datetime(2024, 5, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "unit", "text"),
    [
        (2000, "USD", "20.00 USD"),
        (2050, "USD", "20.50 USD"),
        (5, "USD", "0.05 USD"),
        (0, "USD", "0.00 USD"),
        (1999, "EUR", "19.99 EUR"),
        (100, "GBP", "1.00 GBP"),
        (10**12, "USD", "10000000000.00 USD"),
        (10**12 - 1, "USD", "9999999999.99 USD"),
        (500, "MB", "500 MB"),
        (16384, "MB", "16384 MB"),
        (1, "MONTH", "1 MONTH"),
        (2000, "JPY", "2000 JPY"),
    ],
)
def test_format_amount(amount: int, unit: str, text: str) -> None:
    assert format_amount(amount, unit) == text


@pytest.mark.parametrize("unit", ["CAD", "AUD", "CHF"])
def test_format_amount_other_two_decimal_currencies(unit: str) -> None:
    assert format_amount(2000, unit) == f"20.00 {unit}"


def test_reward_earned_message() -> None:
    event = RewardIssued(
        reward_id=uuid.UUID(int=1),
        conversion_id=uuid.UUID(int=2),
        referral_id=uuid.UUID(int=3),
        program_id=uuid.UUID(int=4),
        program_version=1,
        referrer_id=uuid.UUID(int=5),
        side="referrer",
        recipient=str(uuid.UUID(int=5)),
        amount=2000,
        unit="USD",
        issued_at=NOW,
    )
    message = reward_earned(event)
    assert message.kind == "reward_issued"
    assert message.body == "You earned 20.00 USD for a referral."


def test_welcome_message_carries_the_link() -> None:
    event = ParticipantEnrolled(
        participant_id=uuid.UUID(int=1),
        program_id=uuid.UUID(int=2),
        external_user_id="u1",
        code="ABCDEFGH23",
        link_url="https://ref.example.com/r/ABCDEFGH23",
        enrolled_at=NOW,
    )
    message = welcome(event)
    assert message.kind == "welcome"
    assert "https://ref.example.com/r/ABCDEFGH23" in message.body


@pytest.mark.parametrize(
    ("amount", "unit", "locale", "text"),
    [
        (2000, "USD", "en", "$20.00"),
        (2000, "USD", "en-GB", "US$20.00"),
        (2000, "USD", "ar", "\u200f20.00\xa0US$"),
        (2000, "USD", "zh", "US$20.00"),
        (2000, "USD", "lv", "20,00\xa0$"),
        (1999, "EUR", "lv-LV", "19,99\xa0€"),
        (2000, "JPY", "en", "¥2,000"),
        (16384, "MB", "lv", "16\xa0384 MB"),
        (500, "MB", "ar", "500 MB"),
        (2000, "USD", "xx-nonsense", "$20.00"),
        (None, "USD", "en", ""),
    ],
)
def test_format_amount_for_a_locale(amount: int | None, unit: str, locale: str, text: str) -> None:
    assert format_amount_for(amount, unit, locale) == text
