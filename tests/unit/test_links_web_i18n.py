"""The participant pages' catalogs: complete in every language, same placeholders as
English, every plural category the language needs; negotiation and formatting."""

from __future__ import annotations

import string
from datetime import date

import pytest
from babel import Locale

from services.links.web.i18n import DEFAULT, SUPPORTED, catalog, negotiate, translator


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", SUPPORTED)
def test_every_catalog_has_every_key(language: str) -> None:
    assert set(catalog(language)) == set(catalog(DEFAULT))


@pytest.mark.parametrize("language", SUPPORTED)
def test_translations_keep_the_placeholders_and_plural_forms(language: str) -> None:
    needed = set(Locale.parse(language).plural_form.tags) | {"other"}
    for key, english in catalog(DEFAULT).items():
        entry = catalog(language)[key]
        assert isinstance(entry, type(english)), key
        if isinstance(entry, dict):
            assert isinstance(english, dict)
            assert needed <= set(entry), f"{language}:{key} lacks {needed - set(entry)}"
            allowed = _placeholders(english["other"]) | {"count"}
            for text in entry.values():
                assert _placeholders(text) <= allowed, f"{language}:{key}"
        else:
            assert isinstance(english, str)
            assert _placeholders(entry) == _placeholders(english), f"{language}:{key}"
            assert entry.strip(), f"{language}:{key} is empty"


def test_the_override_wins_then_the_participant_locale_then_english() -> None:
    assert negotiate("ar", "lv") == "ar"
    assert negotiate(None, "lv-LV") == "lv"
    assert negotiate("zh-Hans-CN", None) == "zh"
    assert negotiate("de", "fr") == "en"  # neither supported
    assert negotiate("", "zh_TW") == "zh"
    assert negotiate(None, None) == "en"


def test_arabic_is_right_to_left_and_the_others_left_to_right() -> None:
    assert translator("ar").direction == "rtl"
    assert {translator(x).direction for x in ("en", "zh", "lv")} == {"ltr"}


def test_unknown_languages_fall_back_to_english() -> None:
    assert translator("xx").language == "en"
    assert translator("xx")("copy") == "Copy"


def test_plurals_follow_the_language_rules() -> None:
    en, ar, lv = translator("en"), translator("ar"), translator("lv")
    assert en.plural("milestone_remaining", 1) == "1 more friend to go"
    assert en.plural("milestone_remaining", 3) == "3 more friends to go"
    assert ar.plural("milestone_remaining", 2) == "تبقّى صديقان"  # the dual
    assert ar.plural("milestone_remaining", 3) == "تبقّى 3 أصدقاء"  # few: 3-10
    assert lv.plural("milestone_remaining", 21) == "Vēl 21 draugs"  # Latvian "one": ends in 1
    assert lv.plural("milestone_remaining", 10) == "Vēl 10 draugu"  # Latvian "zero"


def test_amounts_in_their_units() -> None:
    en, lv = translator("en"), translator("lv")
    assert en.amount(2000, "USD") == "$20.00"  # minor units: 2000 cents
    assert en.amount(500, "JPY") == "¥500"  # no minor unit in yen
    assert en.amount(1024, "MB") == "1,024 MB"
    assert en.amount(1, "PERK") == "1 perk"
    assert en.amount(2, "MONTH") == "2 months"
    assert en.amount(7, "POINTS") == "7 POINTS"
    assert lv.amount(2000, "EUR") == "20,00\xa0€"


def test_numbers_and_dates_are_localized() -> None:
    assert translator("en").number(12345) == "12,345"
    assert translator("lv").number(12345) == "12\xa0345"
    assert translator("en").day(date(2026, 11, 22)) == "Nov 22, 2026"
    assert translator("zh").day(date(2026, 11, 22)) == "2026年11月22日"


def test_a_plural_entry_cannot_be_used_as_a_plain_string() -> None:
    with pytest.raises(TypeError, match="plural"):
        translator("en")("unit_MONTH")
