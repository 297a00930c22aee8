"""Tracking a signup, inside the caller's transaction: attribute it to a referrer, run the
fraud rules, record both and write the referral event. Decisions are the pure modules'
(``policy``, ``fraud``); queries are the repository's."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from opentelemetry import trace

from services.attribution.events import enqueue_flagged, enqueue_rejected, enqueue_signed_up
from services.attribution.fraud import SignupFacts, deciding_rule, evaluate, outcome
from services.attribution.models import SignupIn
from services.attribution.pii import Hasher, email_domain
from services.attribution.policy import (
    Click,
    Decision,
    attribute_click,
    first_click,
)
from services.attribution.repository import inputs, referrals
from shared.contracts.sections.attribution import AttributionPolicy
from shared.telemetry import extract_context

_STATUS_OF = {"allow": "active", "flag": "flagged", "reject": "rejected"}


async def _attribute(
    conn: asyncpg.Connection,
    program_id: UUID,
    body: SignupIn,
    policy: AttributionPolicy,
    now: datetime,
) -> tuple[Decision, Click | None, Click | None, UUID | None]:
    """(attribution decision, the click it used, the click the signup named, the referrer the
    fraud rules judge)."""
    if body.existing_customer and policy.exclude_existing_customers:
        return Decision(None, "existing_customer"), None, None, None
    if body.click_id is None:
        if not policy.allow_code_without_click:
            return Decision(None, "code_without_click_not_allowed"), None, None, None
        referrer = await inputs.participant_by_code(conn, program_id, body.referral_code or "")
        return Decision(referrer, "code" if referrer else "unknown_code"), None, None, referrer
    click = named = await inputs.get_click(conn, body.click_id)
    _link_to_click_trace(named)
    if (
        click is not None
        and policy.model == "first_click"
        and click.visitor_hash
        and click.program_id == program_id
    ):
        since = now - timedelta(days=policy.window_days)
        earlier = await inputs.visitor_clicks(conn, program_id, click.visitor_hash, since)
        click = first_click(click, earlier, signed_up_at=now, window_days=policy.window_days)
    decision = attribute_click(
        click, program_id=program_id, signed_up_at=now, window_days=policy.window_days
    )
    candidate = decision.referrer_id
    if click is not None and decision.reason == "non_attributable_click":
        # A bot/prefetch click still names a referrer: the bot_click rule decides its fate.
        candidate = click.participant_id
    return decision, click, named, candidate


def _link_to_click_trace(click: Click | None) -> None:
    """The signup's span links to the trace of the click it names (one referral, two traces)."""
    if click is None or not click.traceparent:
        return
    context = trace.get_current_span(
        extract_context({"traceparent": click.traceparent})
    ).get_span_context()
    if context.is_valid:
        trace.get_current_span().add_link(context, {"link.kind": "click"})


async def track_signup(
    conn: asyncpg.Connection, program_id: UUID, body: SignupIn, hasher: Hasher, now: datetime
) -> tuple[int, dict[str, Any]]:
    """201 with the decision; 200 with the first result when the customer is known already."""
    existing = await referrals.signup_of_customer(conn, program_id, body.customer_id)
    if existing is not None:
        return 200, await signup_out(conn, existing)
    version, attribution, fraud_policy = await inputs.policies_in_force(conn, program_id, now)
    decision, click, named, candidate = await _attribute(conn, program_id, body, attribution, now)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "program_id": program_id,
        "customer_id": body.customer_id,
        "referrer_id": None,
        "candidate_referrer_id": candidate,
        "click_id": body.click_id,
        "attributed": False,
        "reason": decision.reason,
        "status": "unattributed",
        "signed_up_at": now,
        "email_hash": hasher.email(body.email),
        "email_domain_hash": hasher.domain(body.email),
        "ip_hash": hasher.ip(body.ip),
        "device_hash": hasher.device(body.device_id),
        "user_agent_hash": hasher.user_agent(body.user_agent),
        "existing_customer": body.existing_customer,
        "program_version": version,
    }
    fired = []
    referrer = await inputs.participant(conn, candidate) if candidate is not None else None
    if referrer is not None and referrer["erased_at"] is not None:
        # An erased participant's code and links stop working: nobody is credited.
        candidate = None
        values.update(candidate_referrer_id=None, reason="referrer_erased")
    if candidate is not None:
        external = referrer["external_user_id"] if referrer else None
        ips, devices = (
            await referrals.referrer_fingerprints(conn, program_id, external)
            if external
            else (frozenset(), frozenset())
        )
        hour, day, ip_day = await referrals.velocity_counts(
            conn, program_id, candidate, values["ip_hash"], now
        )
        facts = SignupFacts(
            customer_id=body.customer_id,
            referrer_external_user_id=external,
            email_hash=values["email_hash"],
            email_domain=email_domain(body.email) if body.email else None,
            referrer_email_hash=referrer["email_hash"] if referrer else None,
            ip_hash=values["ip_hash"],
            device_hash=values["device_hash"],
            referrer_ip_hashes=ips,
            referrer_device_hashes=devices,
            referrer_signups_last_hour=hour,
            referrer_signups_last_day=day,
            ip_signups_last_day=ip_day,
            click_attributable=click.attributable if click is not None else None,
            # How long after the click the user saw last (under first-click, not the chosen one).
            seconds_since_click=(now - named.clicked_at).total_seconds() if named else None,
        )
        fired = evaluate(fraud_policy, facts)
        status = _STATUS_OF[outcome(fired)]
        values["status"] = status
        if status == "rejected":  # the top-level reason names the rule that rejected it
            values["reason"] = deciding_rule(fired)
        if status == "active":
            values["referrer_id"] = candidate
            values["attributed"] = True
            if decision.reason == "non_attributable_click":
                values["reason"] = "non_attributable_click_allowed"
    if not await referrals.insert_signup(conn, values):
        # A concurrent request for the same customer won; answer with its result.
        return 200, await signup_out(
            conn, await referrals.signup_of_customer(conn, program_id, body.customer_id)
        )
    if candidate is None:
        return 201, await signup_out(conn, values, rules=[])
    rules_json = [f.as_json() for f in fired]
    await referrals.insert_decision(conn, values["id"], program_id, outcome(fired), rules_json, now)
    outcomes = [f.outcome() for f in fired]
    if values["status"] == "active":
        await enqueue_signed_up(conn, values, referrer["variant"] if referrer else None)
    elif values["status"] == "flagged":
        await enqueue_flagged(conn, values, outcomes, now)
    else:
        await enqueue_rejected(conn, values, outcomes, now)
    return 201, await signup_out(conn, values, rules=rules_json)


async def signup_out(
    conn: asyncpg.Connection,
    row: dict[str, Any] | asyncpg.Record,
    rules: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The answer to a signup; ``rules`` when the caller has just decided them."""
    if rules is None:
        decision = await referrals.decision(conn, row["id"])
        rules = decision["rules"] if decision else []
    return {
        "signup_id": str(row["id"]),
        "customer_id": row["customer_id"],
        "attributed": row["attributed"],
        "referrer_id": str(row["referrer_id"]) if row["referrer_id"] else None,
        "reason": row["reason"],
        "status": row["status"],
        "rules": rules,
    }
