"""Recording intended messages, in the transaction of the event that causes them.

Every message becomes a ``deliveries`` row, unique on (event, recipient, channel): a second
delivery of the event, or a second consumer instance, hits the constraint and adds nothing.
In-app messages are written to the feed right here (no external call); emails and webhooks
are left ``pending`` for the sender, or ``skipped`` with the reason."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.notifications import repository as repo
from services.notifications.catalog import TRIGGERS
from services.notifications.messages import localize
from services.notifications.metrics import SKIPPED
from services.notifications.policy import Recipient, skip_reason
from services.notifications.render import Rendered, TemplateInvalid, render
from services.notifications.settings import NotificationsSettings
from services.notifications.unsubscribe import make_token
from services.notifications.webhooks import body_for

# The reminder kind of a message waiting for its participant's enrolment, how long between
# looks, and how many looks before it goes out without the participant's details.
DEFERRED = "deferred"
DEFER_S = 2.0
DEFER_TRIES = 30


async def _insert(
    conn: asyncpg.Connection,
    *,
    event_id: UUID,
    program_id: UUID,
    participant_id: UUID | None,
    recipient_key: str,
    channel: str,
    trigger: str,
    category: str,
    payload: dict[str, Any],
    address: str | None = None,
    endpoint_id: UUID | None = None,
    reason: str | None = None,
    status: str = "pending",
) -> bool:
    """True when this is the first record of (event, recipient, channel)."""
    if reason is not None:
        status = "skipped"
    inserted = await conn.fetchval(
        "INSERT INTO deliveries (id, event_id, program_id, participant_id, recipient_key, "
        "channel, trigger, category, payload, address, endpoint_id, status, reason, sent_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
        "CASE WHEN $12 = 'sent' THEN now() END) "
        "ON CONFLICT (event_id, recipient_key, channel) DO NOTHING RETURNING true",
        uuid.uuid4(),
        event_id,
        program_id,
        participant_id,
        recipient_key,
        channel,
        trigger,
        category,
        payload,
        address if status == "pending" else None,
        endpoint_id,
        status,
        reason,
    )
    if inserted and status == "skipped":
        SKIPPED.labels(channel).inc()
    return bool(inserted)


def _payload(rendered: Rendered, locale: str, unsubscribe_url: str | None) -> dict[str, Any]:
    return {
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "lang": locale,
        "unsubscribe_url": unsubscribe_url,
    }


# One message per endpoint of the program that subscribes to the event type (disabled ones
# too: they are held, not dropped). Webhook rows start pending: no skip to count.
_FAN_OUT = (
    "INSERT INTO deliveries (id, event_id, program_id, participant_id, recipient_key, "
    "channel, trigger, category, payload, endpoint_id, status) "
    "SELECT gen_random_uuid(), {event}, {program}, {participant}, e.id::text, 'webhook', "
    "{type}, 'transactional', {payload}, e.id, 'pending' FROM webhook_endpoints e "
    "WHERE e.program_id = {program} AND (cardinality(e.event_types) = 0 "
    "OR {type} = ANY(e.event_types)){also} "
    "ON CONFLICT (event_id, recipient_key, channel) DO NOTHING"
)


_FAN_OUT_ALONE = _FAN_OUT.format(
    event="$1", program="$2", participant="$3", type="$4", payload="$5", also=""
)


@dataclass(frozen=True)
class Fanout:
    """An event for the program's webhook endpoints, written with the participant's rows."""

    program_id: UUID
    event_type: str
    payload: dict[str, Any]
    participant_id: UUID | None


def fanout(
    *,
    program_id: UUID,
    event_type: str,
    occurred_at: datetime,
    data: dict[str, Any],
    participant_id: UUID | None = None,
) -> Fanout:
    body = body_for(event_type, occurred_at, data)
    return Fanout(program_id, event_type, {"type": event_type, "body": body}, participant_id)


_RECORD = (
    # The participant's rows of one message, set-wise, the feed item when the in-app row is
    # new and sent, and the event's webhook rows if any: one round trip for all of them.
    "WITH d AS (INSERT INTO deliveries (id, event_id, program_id, participant_id, "
    "recipient_key, channel, trigger, category, payload, address, status, reason, sent_at) "
    "SELECT r.id, $1, $2, $3, $4, r.channel, $5, $6, r.payload, r.address, r.status, r.reason, "
    "CASE WHEN r.status = 'sent' THEN now() END "
    "FROM unnest($7::uuid[], $8::text[], $9::jsonb[], $10::text[], $11::text[], $12::text[]) "
    "AS r(id, channel, payload, address, status, reason) "
    "ON CONFLICT (event_id, recipient_key, channel) DO NOTHING RETURNING channel, status), "
    "n AS (INSERT INTO notifications (id, event_id, program_id, participant_id, kind, title, "
    "body) SELECT $13, $1, $2, $3, $5, $14, $15 "
    "WHERE EXISTS (SELECT 1 FROM d WHERE d.channel = 'in_app' AND d.status = 'sent') "
    "ON CONFLICT DO NOTHING), "
    "w AS ("
    + _FAN_OUT.format(
        event="$1",
        program="$16",
        participant="$17",
        type="$18",
        payload="$19",
        also=" AND $18::text IS NOT NULL",
    )
    + ") "
    "SELECT channel, status FROM d"
)


@dataclass(frozen=True)
class Told:
    """What ``to_participant`` read, for a handler that needs it too (no second read)."""

    who: repo.Participant | None  # None: unknown, the message was deferred
    definition: dict[str, Any]  # of the participant's program, in force now
    converted: int | None = None  # with count_conversion_in: the count after this one


async def to_participant(
    conn: asyncpg.Connection,
    settings: NotificationsSettings,
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
    seen, converted = await repo.audience(
        conn, participant_id, trigger, spec.category, count_conversion_in=count_conversion_in
    )
    if seen is None and defer_if_unknown:
        # Topics are not ordered with each other: a reward can be handled before the
        # enrolment that tells us the address and language. Try again shortly, as the
        # same event (the scheduler passes this event id on).
        await repo.schedule_reminder(
            conn,
            program_id=program_id,
            participant_id=participant_id,
            kind=DEFERRED,
            dedupe=f"{event_id}:{trigger}",
            due_at=datetime.now(UTC) + timedelta(seconds=DEFER_S),
            data={"event_id": str(event_id), "trigger": trigger, "variables": variables},
        )
        if webhooks is not None:
            await to_webhooks_of(conn, event_id, webhooks)
        return Told(None, {}, converted)
    if seen is None:
        # Still unknown after waiting: the feed gets its item in English, the email is
        # logged as skipped for want of an address.
        who = repo.Participant(participant_id, program_id, None, "en", "", None, None, False)
        definition = await repo.definition(conn, program_id)
        source = await repo.template(conn, program_id, trigger, who.locale, who.variant)
        subscribed, marketing_sent = True, 0
    else:
        who = seen.who
        definition = (
            await repo.definition_of_version(conn, who.program_id, seen.version) or {}
            if seen.version is not None
            else {}
        )
        if unless_erased and who.erased:
            return Told(who, definition, converted)
        source = repo.choose_template(seen.templates, trigger, who.locale, who.variant)
        subscribed, marketing_sent = seen.subscribed, seen.marketing_sent_last_day
    policy = repo.policy_of(definition, who.variant)
    values = localize(
        {"name": who.name, "link_url": who.link_url, **variables, "locale": who.locale},
        who.locale,
    )
    # The in-app item and a skipped email use subject and text only: no HTML layout.
    try:
        plain = render(source, values, who.locale, layout=False)
    except TemplateInvalid:
        # A broken program template must not stop the message: the default says it.
        source = repo.choose_template({}, trigger, who.locale, None)
        plain = render(source, values, who.locale, layout=False)
    channels: list[tuple[str, dict[str, Any], str | None, str, str | None]] = []
    if spec.in_app:
        reason = "participant erased" if who.erased else None
        payload = {"subject": plain.subject, "text": plain.text}
        channels.append(("in_app", payload, None, "sent" if reason is None else "skipped", reason))
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
        token = make_token(settings.unsubscribe_key(), who.participant_id, spec.category)
        url = f"{settings.public_url()}/unsubscribe/{token}"
        try:
            # Subject and text do not depend on the link: rendered once, reused.
            again = (plain.subject, plain.text)
            full = render(source, values, who.locale, url, texts=again)
            payload = _payload(full, who.locale, url)
        except TemplateInvalid:
            default = repo.choose_template({}, trigger, who.locale, None)
            payload = _payload(render(default, values, who.locale, url), who.locale, url)
    channels.append(("email", payload, who.email if reason is None else None, "pending", reason))
    recorded = await conn.fetch(
        _RECORD,
        event_id,
        who.program_id,
        who.participant_id,
        str(who.participant_id),
        trigger,
        spec.category,
        [uuid.uuid4() for _ in channels],
        [c[0] for c in channels],
        [c[1] for c in channels],
        [c[2] for c in channels],
        [c[3] if c[4] is None else "skipped" for c in channels],
        [c[4] for c in channels],
        uuid.uuid4(),
        plain.subject,
        plain.text,
        webhooks.program_id if webhooks else None,
        webhooks.participant_id if webhooks else None,
        webhooks.event_type if webhooks else None,
        webhooks.payload if webhooks else None,
    )
    for row in recorded:
        if row["status"] == "skipped":
            SKIPPED.labels(row["channel"]).inc()
    return Told(who, definition, converted)


async def to_ops(
    conn: asyncpg.Connection,
    *,
    event_id: UUID,
    program_id: UUID,
    trigger: str,
    variables: dict[str, Any],
) -> None:
    """Ops messages, in English, to the program's ops addresses (no unsubscribe link)."""
    policy = repo.policy_of(await repo.definition(conn, program_id))
    source = await repo.template(conn, program_id, trigger, "en", None)
    values = localize(variables, "en")
    try:
        rendered = render(source, values, "en")
    except TemplateInvalid:
        rendered = render(await repo.template(conn, None, trigger, "en", None), values, "en")
    for address in policy.ops_emails:
        await _insert(
            conn,
            event_id=event_id,
            program_id=program_id,
            participant_id=None,
            recipient_key=repo.ops_key(address),
            channel="email",
            trigger=trigger,
            category="transactional",
            payload=_payload(rendered, "en", None),
            address=address,
        )


async def to_webhooks(
    conn: asyncpg.Connection,
    *,
    event_id: UUID,
    program_id: UUID,
    event_type: str,
    occurred_at: datetime,
    data: dict[str, Any],
    participant_id: UUID | None = None,
) -> None:
    """One message per subscribed endpoint of the program (disabled ones too: they are
    held, not dropped, and go out if the endpoint is enabled again)."""
    await to_webhooks_of(
        conn,
        event_id,
        fanout(
            program_id=program_id,
            event_type=event_type,
            occurred_at=occurred_at,
            data=data,
            participant_id=participant_id,
        ),
    )


async def to_webhooks_of(conn: asyncpg.Connection, event_id: UUID, webhooks: Fanout) -> None:
    """``to_webhooks`` of a prepared fan-out."""
    await conn.execute(
        _FAN_OUT_ALONE,
        event_id,
        webhooks.program_id,
        webhooks.participant_id,
        webhooks.event_type,
        webhooks.payload,
    )
