"""Templates rendered in a Jinja2 sandbox: a program's template cannot reach Python objects,
files or attributes beyond plain data. Subjects and text are not escaped; HTML is."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from jinja2 import Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from services.notifications.catalog import UNSUBSCRIBE_LABEL, direction, language_of

_TEXT = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)
_HTML = SandboxedEnvironment(autoescape=True)
MAX_OUTPUT = 100_000

# The HTML mail around a text body: ``lang`` and ``dir`` make right-to-left scripts lay out
# correctly in mail clients (the attribute on <html> and on the content block both matter).
_LAYOUT = _HTML.from_string(
    """<!DOCTYPE html>
<html lang="{{ lang }}" dir="{{ dir }}">
<head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body dir="{{ dir }}" style="font-family: sans-serif; text-align: {{ align }};">
<div dir="{{ dir }}">
{% for paragraph in paragraphs %}<p>{{ paragraph }}</p>
{% endfor %}{% if link_url %}<p><a href="{{ link_url }}">{{ link_url }}</a></p>
{% endif %}</div>
{% if unsubscribe_url %}<p style="font-size: small;">
<a href="{{ unsubscribe_url }}">{{ unsubscribe_label }}</a></p>
{% endif %}</body>
</html>
"""
)


class TemplateInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Source:
    subject: str
    body: str
    html: str | None = None


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def check(source: Source) -> None:
    """Refuse a template that does not parse, naming the part."""
    for field, env, text in (
        ("subject", _TEXT, source.subject),
        ("body", _TEXT, source.body),
        ("html", _HTML, source.html),
    ):
        if text is None:
            continue
        if "\x00" in text:
            raise TemplateInvalid(field, "contains a NUL character")
        try:
            env.parse(text)
        except TemplateError as exc:
            raise TemplateInvalid(field, str(exc)) from exc


@functools.lru_cache(maxsize=1024)
def _compiled(html: bool, text: str) -> Template:
    """Compiling costs far more than rendering; templates repeat across messages."""
    return (_HTML if html else _TEXT).from_string(text)


def _render(env: SandboxedEnvironment, field: str, text: str, variables: dict[str, Any]) -> str:
    try:
        out = _compiled(env is _HTML, text).render(variables)
    except TemplateError as exc:  # includes the sandbox's SecurityError
        raise TemplateInvalid(field, str(exc)) from exc
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:
        # A program's template can divide by zero or index past the end: its fault, not ours.
        raise TemplateInvalid(field, f"{type(exc).__name__}: {exc}") from exc
    return out[:MAX_OUTPUT]


def render(
    source: Source,
    variables: dict[str, Any],
    locale: str | None,
    unsubscribe_url: str | None = None,
    *,
    layout: bool = True,
    texts: tuple[str, str] | None = None,
) -> Rendered:
    """``layout=False`` leaves ``html`` empty when the source has no HTML of its own (the
    shipped layout cannot fail, so a caller that needs only subject and text skips it; a
    program's own HTML is still rendered, as its failure decides the fallback). ``texts``:
    subject and text already rendered from this source and these variables, reused."""
    if texts is None:
        subject = " ".join(_render(_TEXT, "subject", source.subject, variables).split())
        text = _render(_TEXT, "body", source.body, variables).strip()
    else:
        subject, text = texts
    lang = language_of(locale)
    page = {
        **variables,
        "subject": subject,
        "text": text,
        "lang": (locale or "en").replace("_", "-"),
        "dir": direction(locale),
        "align": "right" if direction(locale) == "rtl" else "left",
        "unsubscribe_url": unsubscribe_url,
        "unsubscribe_label": UNSUBSCRIBE_LABEL.get(lang, UNSUBSCRIBE_LABEL["en"]),
    }
    if source.html is not None:
        html = _render(_HTML, "html", source.html, page)
    elif layout:
        paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
        html = _LAYOUT.render({**page, "paragraphs": paragraphs})
    else:
        html = ""
    if unsubscribe_url and text:
        text = f"{text}\n\n{page['unsubscribe_label']}: {unsubscribe_url}"
    return Rendered(subject=subject, text=text, html=html)
