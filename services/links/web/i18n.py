"""Words, numbers, dates and amounts of the participant pages in the participant's language.

Catalogs are JSON files in ``locales/`` (one per language, flat keys). A value is a string
with ``{named}`` placeholders, or, for words that follow a count, an object of CLDR plural
categories (``zero one two few many other``) chosen with Babel's plural rules for the
locale. A key missing from a catalog falls back to English; a test keeps every catalog
complete."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    get_currency_symbol,
    list_currencies,
)

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT = "en"
SUPPORTED = ("en", "ar", "zh", "lv")
LANGUAGE_NAMES = {"en": "English", "ar": "العربية", "zh": "中文", "lv": "Latviešu"}
Entry = str | dict[str, str]


@cache
def catalog(language: str) -> dict[str, Entry]:
    data: dict[str, Entry] = json.loads((LOCALES_DIR / f"{language}.json").read_text("utf-8"))
    return data


def _language_of(tag: str | None) -> str | None:
    """The supported language a BCP 47 tag names (``zh-Hans-CN`` → ``zh``), or None."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in SUPPORTED else None


def negotiate(override: str | None, participant_locale: str | None) -> str:
    """``?lang=`` wins, then the participant's own locale, then English."""
    return _language_of(override) or _language_of(participant_locale) or DEFAULT


@dataclass(frozen=True)
class Translator:
    language: str

    @property
    def locale(self) -> Locale:
        return _babel_locale(self.language)

    @property
    def direction(self) -> str:
        return "rtl" if self.locale.character_order == "right-to-left" else "ltr"

    def _entry(self, key: str) -> Entry:
        entry = catalog(self.language).get(key)
        if entry is None:
            entry = catalog(DEFAULT)[key]  # a key unknown in English is a programming error
        return entry

    def __call__(self, key: str, **values: Any) -> str:
        entry = self._entry(key)
        if isinstance(entry, dict):
            raise TypeError(f"{key!r} is a plural entry: use plural()")
        return entry.format(**values)

    def plural(self, key: str, count: int, **values: Any) -> str:
        entry = self._entry(key)
        if isinstance(entry, str):
            return entry.format(count=self.number(count), **values)
        form = self.locale.plural_form(count)
        text = entry.get(form) or entry["other"]
        return text.format(count=self.number(count), **values)

    def number(self, value: float) -> str:
        return format_decimal(value, locale=self.locale)

    def day(self, value: date | datetime) -> str:
        return format_date(value, format="medium", locale=self.locale)

    def amount(self, minor_units: int, unit: str) -> str:
        """An integer amount with its unit: currencies from minor units ($20.00 for 2000
        USD), MB / MONTH / PERK as counts with a localized word."""
        if unit in _currencies():
            digits = get_currency_precision(unit)
            text = format_currency(minor_units / 10**digits, unit, locale=self.locale)
            symbol = get_currency_symbol(unit, locale=self.locale)
            if self.direction == "rtl" and symbol in text:
                # "US$" in right-to-left text shows as "$US": isolate the symbol (FSI..PDI).
                text = text.replace(symbol, f"\u2068{symbol}\u2069", 1)
            return text
        key = f"unit_{unit}"
        if key in catalog(DEFAULT):
            return self.plural(key, minor_units)
        return self("unit_other", n=self.number(minor_units), unit=unit)


@cache
def _babel_locale(language: str) -> Locale:
    return Locale.parse(language)


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def translator(language: str) -> Translator:
    return Translator(language if language in SUPPORTED else DEFAULT)
