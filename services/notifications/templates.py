"""Templates: the one a reader gets (the program's own or a shipped default), a program's
templates (checked on write), and previews with sample data."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.notifications.catalog import locale_chain
from services.notifications.render import Rendered, Source, check, render
from services.notifications.repository import Conn
from services.notifications.repository import templates as stored
from services.notifications.template_resolution import choose_template
from services.notifications.variables import SAMPLES, localize


async def template_for(
    conn: Conn, program_id: UUID | None, trigger: str, locale: str | None, variant: str | None
) -> Source:
    """The template a reader of ``locale`` and ``variant`` gets (see ``template_resolution``);
    with no program, the shipped default."""
    found: dict[tuple[str, str], Source] = {}
    if program_id is not None:
        found = await stored.of_trigger(
            conn, program_id, trigger, locale_chain(locale), [variant or "", ""]
        )
    return choose_template(found, trigger, locale, variant)


def _stored_key(locale: str, variant: str | None) -> tuple[str, str]:
    return locale.replace("_", "-"), variant or ""


async def list_templates(conn: Conn, program_id: UUID) -> list[dict[str, Any]]:
    return await stored.list_all(conn, program_id)


async def put_template(
    conn: Conn, program_id: UUID, trigger: str, locale: str, variant: str | None, source: Source
) -> dict[str, Any]:
    """Stored if every part parses; raises ``TemplateInvalid`` naming the part otherwise."""
    check(source)
    return await stored.put(conn, program_id, trigger, *_stored_key(locale, variant), source)


async def delete_template(
    conn: Conn, program_id: UUID, trigger: str, locale: str, variant: str | None
) -> bool:
    return await stored.delete(conn, program_id, trigger, *_stored_key(locale, variant))


async def preview(
    conn: Conn,
    program_id: UUID,
    *,
    trigger: str,
    locale: str,
    variant: str | None,
    subject: str | None,
    body: str | None,
    html: str | None,
    variables: dict[str, Any],
    unsubscribe_url: str,
) -> tuple[Rendered, dict[str, Any]]:
    """The template a participant of this locale and variant would get or, given a subject or
    a body, that draft (the missing part taken from the template, ``html`` as given), rendered
    with sample data overridden by ``variables``. Raises ``TemplateInvalid``."""
    source = await template_for(conn, program_id, trigger, locale, variant)
    if subject is not None or body is not None:
        source = Source(
            subject if subject is not None else source.subject,
            body if body is not None else source.body,
            html,
        )
    values = localize({**SAMPLES[trigger], **variables}, locale)
    return render(source, values, locale, unsubscribe_url), values
