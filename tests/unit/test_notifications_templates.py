"""Default templates (every trigger, four languages), locale fallback and direction, the
sandbox, and escaping in HTML mail."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifications.catalog import (
    DEFAULTS,
    TRIGGERS,
    default_template,
    direction,
    language_of,
    locale_chain,
)
from services.notifications.render import Source, TemplateInvalid, check, render
from services.notifications.variables import SAMPLES, localize

LOCALES = ("en", "ar", "zh", "lv")
_VAR = re.compile(r"{{\s*(\w+)")


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("trigger", sorted(TRIGGERS))
def test_every_trigger_ships_in_every_language_and_renders(locale: str, trigger: str) -> None:
    subject, body = DEFAULTS[locale][trigger]
    check(Source(subject, body))
    # The same variables as the English text: a translation cannot drop the link or amount.
    english = set(_VAR.findall("".join(DEFAULTS["en"][trigger])))
    assert set(_VAR.findall(subject + body)) == english
    rendered = render(Source(subject, body), localize(SAMPLES[trigger], locale), locale)
    assert rendered.subject and rendered.text
    assert "{{" not in rendered.text and "{%" not in rendered.text
    assert f'dir="{direction(locale)}"' in rendered.html


@pytest.mark.parametrize(
    ("locale", "chain", "lang", "dir_"),
    [
        ("en", ["en"], "en", "ltr"),
        ("ar-EG", ["ar-EG", "ar", "en"], "ar", "rtl"),
        ("zh_Hans", ["zh-Hans", "zh", "en"], "zh", "ltr"),
        ("lv", ["lv", "en"], "lv", "ltr"),
        ("he", ["he", "en"], "he", "rtl"),
        (None, ["en"], "en", "ltr"),
        ("", ["en"], "en", "ltr"),
        ("12", ["12", "en"], "en", "ltr"),
    ],
)
def test_locale_chain_and_direction(
    locale: str | None, chain: list[str], lang: str, dir_: str
) -> None:
    assert locale_chain(locale) == chain
    assert language_of(locale) == lang
    assert direction(locale) == dir_


def test_unknown_language_falls_back_to_english() -> None:
    assert default_template("welcome", "fr-CA") == DEFAULTS["en"]["welcome"]
    assert default_template("welcome", "ar-SA") == DEFAULTS["ar"]["welcome"]


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ name.__class__ }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    ],
)
def test_the_sandbox_refuses_reaching_into_python(body: str) -> None:
    """Unsafe attributes are either refused or read as undefined: nothing of Python leaks."""
    try:
        rendered = render(Source("s", body), {"name": "x"}, "en")
    except TemplateInvalid as exc:
        assert exc.field == "body"
        assert "unsafe" in str(exc) or "undefined" in str(exc)
    else:
        assert rendered.text == ""


def test_a_syntax_error_names_the_part() -> None:
    with pytest.raises(TemplateInvalid) as caught:
        check(Source("ok", "fine", "<p>{% if %}</p>"))
    assert caught.value.field == "html"


@given(st.text(min_size=1, max_size=40))
def test_html_mail_escapes_whatever_a_variable_holds(name: str) -> None:
    rendered = render(Source("Hi", "Hi {{ name }}"), {"name": name}, "en")
    assert rendered.text == f"Hi {name}".strip()
    # Take away the layout's own tags: no markup is left, whatever the variable held.
    bare = re.sub(
        r"<!DOCTYPE html>|</?(html|head|meta|title|body|div|p|a)\b[^<>]*>", "", rendered.html
    )
    assert "<" not in bare and ">" not in bare


def test_html_mail_escapes_markup() -> None:
    rendered = render(Source("Hi", "Hi {{ name }}"), {"name": "<script>x</script>"}, "en")
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert rendered.text == "Hi <script>x</script>"


def test_unsubscribe_link_in_text_and_html() -> None:
    url = "https://n.example/unsubscribe/t"
    rendered = render(Source("S", "Body"), {}, "ar", url)
    assert rendered.text.endswith(f"إلغاء الاشتراك: {url}")
    assert f'href="{url}"' in rendered.html


@given(
    st.dictionaries(
        st.sampled_from(["paragraphs", "subject", "dir", "lang", "link_url", "x", "text"]),
        st.one_of(st.text(max_size=20), st.integers(), st.none(), st.lists(st.integers())),
    )
)
def test_any_variables_render_or_are_refused_cleanly(variables: dict[str, object]) -> None:
    """Preview takes variables from callers: whatever they hold, rendering gives text or a
    TemplateInvalid, never another error."""
    try:
        render(Source("{{ x }}", "{{ x }} {{ link_url }}"), localize(variables, "ar"), "ar")
    except TemplateInvalid:
        pass


@pytest.mark.parametrize("body", ["{{ 1 / 0 }}", "{{ missing.attr.deeper }}", "{{ 'a' + 1 }}"])
def test_runtime_errors_in_a_template_are_the_template_s(body: str) -> None:
    with pytest.raises(TemplateInvalid):
        render(Source("s", body), {}, "en")


def test_nul_characters_are_refused() -> None:
    with pytest.raises(TemplateInvalid) as caught:
        check(Source("a\x00b", "body"))
    assert caught.value.field == "subject"
