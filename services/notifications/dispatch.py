"""Recording intended messages, in the transaction of the event that causes them.

Every message becomes a ``deliveries`` row, unique on (event, recipient, channel): a second
delivery of the event, or a second consumer instance, hits the constraint and adds nothing.
In-app messages are written to the feed right here (no external call); emails and webhooks
are left ``pending`` for the sender, or ``skipped`` with the reason."""

from __future__ import annotations

import uuid
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
) -> None:
    """The in-app item (if the trigger has one) and the email for one participant."""
    who = await repo.participant(conn, participant_id)
    if who is None and defer_if_unknown:
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
        return
    if who is None:
        # Still unknown after waiting: the feed gets its item in English, the email is
        # logged as skipped for want of an address.
        who = repo.Participant(participant_id, program_id, None, "en", "", None, None, False)
    spec = TRIGGERS[trigger]
    definition = await repo.definition(conn, who.program_id)
    policy = repo.policy_of(definition, who.variant)
    values = localize(
        {"name": who.name, "link_url": who.link_url, **variables, "locale": who.locale},
        who.locale,
    )
    source = await repo.template(conn, who.program_id, trigger, who.locale, who.variant)
    try:
        plain = render(source, values, who.locale)
    except TemplateInvalid:
        # A broken program template must not stop the message: the default says it.
        source = await repo.template(conn, None, trigger, who.locale, None)
        plain = render(source, values, who.locale)
    common = {
        "event_id": event_id,
        "program_id": who.program_id,
        "participant_id": who.participant_id,
        "recipient_key": str(who.participant_id),
        "trigger": trigger,
        "category": spec.category,
    }
    if spec.in_app:
        reason = "participant erased" if who.erased else None
        first = await _insert(
            conn,
            channel="in_app",
            payload={"subject": plain.subject, "text": plain.text},
            status="sent",
            reason=reason,
            **common,
        )
        if first and reason is None:
            await conn.execute(
                "INSERT INTO notifications (id, event_id, program_id, participant_id, kind, "
                "title, body) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                uuid.uuid4(),
                event_id,
                who.program_id,
                who.participant_id,
                trigger,
                plain.subject,
                plain.text,
            )
    recipient = Recipient(
        has_address=bool(who.email),
        erased=who.erased,
        subscribed=await repo.subscribed(conn, who.participant_id, spec.category),
        marketing_sent_last_day=(
            await repo.marketing_sent_last_day(conn, who.participant_id)
            if spec.category == "marketing"
            else 0
        ),
    )
    reason = skip_reason(
        channel="email",
        category=spec.category,
        recipient=recipient,
        email_enabled=policy.email,
        marketing_per_day=policy.marketing_per_day,
    )
    payload: dict[str, Any] = {"subject": plain.subject}
    if reason is None:
        token = make_token(settings.unsubscribe_key(), who.participant_id, spec.category)
        url = f"{settings.public_url()}/unsubscribe/{token}"
        try:
            payload = _payload(render(source, values, who.locale, url), who.locale, url)
        except TemplateInvalid:
            default = await repo.template(conn, None, trigger, who.locale, None)
            payload = _payload(render(default, values, who.locale, url), who.locale, url)
    await _insert(
        conn, channel="email", payload=payload, address=who.email, reason=reason, **common
    )


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
    endpoints = await conn.fetch(
        "SELECT id FROM webhook_endpoints WHERE program_id = $1 "
        "AND (cardinality(event_types) = 0 OR $2 = ANY(event_types))",
        program_id,
        event_type,
    )
    body = body_for(event_type, occurred_at, data)
    for endpoint in endpoints:
        await _insert(
            conn,
            event_id=event_id,
            program_id=program_id,
            participant_id=participant_id,
            recipient_key=str(endpoint["id"]),
            channel="webhook",
            trigger=event_type,
            category="transactional",
            payload={"type": event_type, "body": body},
            endpoint_id=endpoint["id"],
        )
