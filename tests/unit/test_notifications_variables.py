"""How amounts read in each locale."""

from __future__ import annotations

import pytest

from services.notifications.variables import format_amount_for, localize


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


def test_only_whole_number_and_unit_pairs_are_formatted_as_amounts() -> None:
    # A preview's variables come from the caller; these once answered 500.
    values = {"a": [True, "USD"], "b": [1, {}], "c": (2000, "USD"), "d": [5, "MB"]}
    assert localize(values, "en") == {"a": [True, "USD"], "b": [1, {}], "c": "$20.00", "d": "5 MB"}
