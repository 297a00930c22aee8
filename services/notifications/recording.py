"""Recording intended messages, in the transaction of the event that causes them (the
``delivery`` module makes the external calls later).

Every message becomes a ``deliveries`` row, unique on (event, recipient, channel): a second
delivery of the event, or a second consumer instance, hits the constraint and adds nothing.
In-app messages are written to the feed right here (no external call); emails and webhooks
are left ``pending`` for delivery, or ``skipped`` with the reason."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.notifications.catalog import TRIGGERS
from services.notifications.context import Context
from services.notifications.metrics import SKIPPED
from services.notifications.policy import Recipient, policy_of, skip_reason
from services.notifications.render import Rendered, TemplateInvalid, render
from services.notifications.repository import deliveries, participants, reminders
from services.notifications.repository.deliveries import ChannelRow, Fanout
from services.notifications.repository.participants import Participant
from services.notifications.template_resolution import choose_template
from services.notifications.templates import template_for
from services.notifications.unsubscribe import LINK_CATEGORY, make_token
from services.notifications.variables import localize
from services.notifications.webhooks import body_for

# The reminder kind of a message waiting for its participant's enrolment, how long between
# looks, and how many looks before it goes out without the participant's details.
DEFERRED = "deferred"
DEFER_S = 2.0
DEFER_TRIES = 30


def _payload(rendered: Rendered, locale: str, unsubscribe_url: str | None) -> dict[str, Any]:
    return {
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "lang": locale,
        "unsubscribe_url": unsubscribe_url,
    }


def ops_key(address: str) -> str:
    """A recipient key for an ops address that does not carry the address itself."""
    return "ops:" + hashlib.sha256(address.lower().encode()).hexdigest()[:24]


def fanout(
    *,
    program_id: UUID,
    event_type: str,
    occurred_at: datetime,
    data: dict[str, Any],
    participant_id: UUID | None = None,
) -> Fanout:
    """The event for the program's webhook endpoints, as Standard Webhooks bodies."""
    body = body_for(event_type, occurred_at, data)
    return Fanout(program_id, event_type, {"type": event_type, "body": body}, participant_id)


@dataclass(frozen=True)
class Told:
    """What ``to_participant`` read, for a handler that needs it too (no second read)."""

    who: Participant | None  # None: unknown, the message was deferred
    definition: dict[str, Any]  # of the participant's program, in force now
    converted: int | None = None  # with count_conversion_in: the count after this one


async def to_participant(
    conn: asyncpg.Connection,
    ctx: Context,
    *,
    event_id: UUID,
    trigger: str,
    program_id: UUID,
    participant_id: UUID,
    variables: dict[str, Any],
    defer_if_unknown: bool = True,
    unless_erased: bool = False,
    webhooks: Fanout | None = None,
    count_conversion_in: UUID | None = None,
) -> Told:
    """The in-app item (if the trigger has one) and the email for one participant, and the
    event's ``webhooks`` in the same statement. With ``unless_erased``, an erased participant
    gets nothing at all (not even skipped rows, nor webhooks). With ``count_conversion_in``
    (a program id), a first purchase is counted in ``participant_progress`` by the same
    statement that reads the participant, known or not (``Told.converted``)."""
    spec = TRIGGERS[trigger]
    seen, converted = await participants.audience(
        conn, participant_id, trigger, spec.category, count_conversion_in=count_conversion_in
    )
    if seen is None and defer_if_unknown:
        # Topics are not ordered with each other: a reward can be handled before the
        # enrolment that tells us the address and language. Try again shortly, as the
        # same event (the scheduler passes this event id on).
        await reminders.schedule(
            conn,
            program_id=program_id,
            participant_id=participant_id,
            kind=DEFERRED,
            dedupe=f"{event_id}:{trigger}",
            due_at=datetime.now(UTC) + timedelta(seconds=DEFER_S),
            data={"event_id": str(event_id), "trigger": trigger, "variables": variables},
        )
        if webhooks is not None:
            await deliveries.fan_out(conn, event_id, webhooks)
        return Told(None, {}, converted)
    if seen is None:
        # Still unknown after waiting: the feed gets its item in English, the email is
        # logged as skipped for want of an address.
        who = Participant(participant_id, program_id, None, "en", "", None, None, False)
        definition = await ctx.definitions.get(conn, program_id)
        source = await template_for(conn, program_id, trigger, who.locale, who.variant)
        subscribed, marketing_sent = True, 0
    else:
        who = seen.who
        definition = (
            await ctx.definitions.of_version(conn, who.program_id, seen.version) or {}
            if seen.version is not None
            else {}
        )
        if unless_erased and who.erased:
            return Told(who, definition, converted)
        source = choose_template(seen.templates, trigger, who.locale, who.variant)
        subscribed, marketing_sent = seen.subscribed, seen.marketing_sent_last_day
    policy = policy_of(definition, who.variant)
    values = localize(
        {"name": who.name, "link_url": who.link_url, **variables, "locale": who.locale},
        who.locale,
    )
    # The in-app item and a skipped email use subject and text only: no HTML layout.
    try:
        plain = render(source, values, who.locale, layout=False)
    except TemplateInvalid:
        # A broken program template must not stop the message: the default says it.
        source = choose_template({}, trigger, who.locale, None)
        plain = render(source, values, who.locale, layout=False)
    rows: list[ChannelRow] = []
    if spec.in_app:
        reason = "participant erased" if who.erased else None
        payload = {"subject": plain.subject, "text": plain.text}
        rows.append(
            ChannelRow("in_app", payload, None, "sent" if reason is None else "skipped", reason)
        )
    recipient = Recipient(
        has_address=bool(who.email),
        erased=who.erased,
        subscribed=subscribed,
        marketing_sent_last_day=marketing_sent if spec.category == "marketing" else 0,
    )
    reason = skip_reason(
        channel="email",
        category=spec.category,
        recipient=recipient,
        email_enabled=policy.email,
        marketing_per_day=policy.marketing_per_day,
    )
    payload = {"subject": plain.subject}
    if reason is None:
        settings = ctx.settings
        # Marketing whatever the mail's category: one click stops nudges, never the
        # notices of the participant's own referrals and rewards.
        token = make_token(settings.unsubscribe_key(), who.participant_id, LINK_CATEGORY)
        url = f"{settings.public_url()}/unsubscribe/{token}"
        try:
            # Subject and text do not depend on the link: rendered once, reused.
            again = (plain.subject, plain.text)
            full = render(source, values, who.locale, url, texts=again)
            payload = _payload(full, who.locale, url)
        except TemplateInvalid:
            default = choose_template({}, trigger, who.locale, None)
            payload = _payload(render(default, values, who.locale, url), who.locale, url)
    rows.append(
        ChannelRow(
            "email",
            payload,
            who.email if reason is None else None,
            "pending" if reason is None else "skipped",
            reason,
        )
    )
    recorded = await deliveries.record_for_participant(
        conn,
        event_id=event_id,
        program_id=who.program_id,
        participant_id=who.participant_id,
        trigger=trigger,
        category=spec.category,
        rows=rows,
        feed_title=plain.subject,
        feed_text=plain.text,
        webhooks=webhooks,
    )
    for channel, status in recorded:
        if status == "skipped":
            SKIPPED.labels(channel).inc()
    return Told(who, definition, converted)


async def to_ops(
    conn: asyncpg.Connection,
    ctx: Context,
    *,
    event_id: UUID,
    program_id: UUID,
    trigger: str,
    variables: dict[str, Any],
) -> None:
    """Ops messages, in English, to the program's ops addresses (no unsubscribe link)."""
    policy = policy_of(await ctx.definitions.get(conn, program_id))
    source = await template_for(conn, program_id, trigger, "en", None)
    values = localize(variables, "en")
    try:
        rendered = render(source, values, "en")
    except TemplateInvalid:
        rendered = render(await template_for(conn, None, trigger, "en", None), values, "en")
    for address in policy.ops_emails:
        await deliveries.record_ops_email(
            conn,
            event_id=event_id,
            program_id=program_id,
            recipient_key=ops_key(address),
            trigger=trigger,
            payload=_payload(rendered, "en", None),
            address=address,
        )


async def to_webhooks(conn: asyncpg.Connection, event_id: UUID, webhooks: Fanout) -> None:
    """One message per subscribed endpoint of the program (disabled ones too: they are
    held, not dropped, and go out if the endpoint is enabled again)."""
    await deliveries.fan_out(conn, event_id, webhooks)
