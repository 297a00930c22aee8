"""The shortcuts of the consumer's hot path give what the long way gives: subject and text
rendered once and reused, the layout skipped where only subject and text are kept, template
resolution over every stored locale of a trigger (one query for all) as over the rows the
narrow query returned, and amounts formatted through a cache."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.notifications.catalog import TRIGGERS, locale_chain
from services.notifications.render import Source, render
from services.notifications.template_resolution import choose_template
from services.notifications.variables import SAMPLES, format_amount_for, localize

LOCALES = ("en", "ar", "ar-EG", "zh", "zh-TW", "lv", "de", "pt-BR", "he")
VARIANTS = ("", "a", "b")
triggers = st.sampled_from(sorted(TRIGGERS))
locales = st.sampled_from(LOCALES)
urls = st.one_of(st.none(), st.just("https://notify.example.com/unsubscribe/t.o.k"))
own_html = st.one_of(st.none(), st.just("<p>{{ text }}</p><a href='{{ unsubscribe_url }}'>x</a>"))


@given(trigger=triggers, locale=locales, url=urls, html=own_html)
def test_reused_texts_and_skipped_layout_match_a_full_render(
    trigger: str, locale: str, url: str | None, html: str | None
) -> None:
    source = Source("Hi {{ name }}", "Share {{ link_url }}\n\nThanks", html)
    values = localize(SAMPLES[trigger], locale)
    full = render(source, values, locale, url)
    plain = render(source, values, locale, layout=False)
    assert (plain.subject, plain.text) == (
        full.subject,
        render(source, values, locale).text,
    )
    assert plain.html == ("" if html is None else render(source, values, locale).html)
    reused = render(source, values, locale, url, texts=(plain.subject, plain.text))
    assert reused == full


stored = st.dictionaries(
    st.tuples(locales, st.sampled_from(VARIANTS)),
    st.builds(lambda s: Source(s, "body " + s), st.text(min_size=1, max_size=5)),
    max_size=8,
)


@given(
    found=stored,
    trigger=triggers,
    locale=locales,
    variant=st.sampled_from((None, "a", "b")),
)
def test_resolution_over_all_locales_equals_resolution_over_the_reader_chain(
    found: dict[tuple[str, str], Source], trigger: str, locale: str, variant: str | None
) -> None:
    chain = locale_chain(locale)
    narrow = {
        key: source
        for key, source in found.items()
        if key[0] in chain and key[1] in (variant or "", "")
    }
    assert choose_template(found, trigger, locale, variant) == choose_template(
        narrow, trigger, locale, variant
    )


@given(
    amount=st.integers(min_value=0, max_value=10**9),
    unit=st.sampled_from(("USD", "EUR", "JPY", "points")),
    locale=locales,
)
def test_cached_amounts_equal_fresh_ones(amount: int, unit: str, locale: str) -> None:
    cached = format_amount_for(amount, unit, locale)
    fresh = format_amount_for.__wrapped__(amount, unit, locale)
    assert cached == fresh and cached
