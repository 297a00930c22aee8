"""Tracking a signup, inside the caller's transaction: attribute it to a referrer, run the
fraud rules, record both and write the referral event. A signup naming a click or a code
that has not reached attribution yet is recorded ``pending`` and decided later by
``pending.py`` with the same ``decide``. Decisions are the pure modules' (``policy``,
``fraud``); queries are the repository's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from opentelemetry import trace

from services.attribution.events import (
    enqueue_flagged,
    enqueue_pending,
    enqueue_rejected,
    enqueue_signed_up,
)
from services.attribution.fraud import (
    Fired,
    SignupFacts,
    deciding_rule,
    evaluate,
    is_disposable,
    outcome,
)
from services.attribution.models import SignupIn, SignupOut
from services.attribution.occurred import TimeBounds, occurred_at
from services.attribution.pii import Hasher, email_domain
from services.attribution.policy import (
    WAITING_FOR,
    Click,
    Decision,
    attribute_click,
    first_click,
)
from services.attribution.repository import customers, inputs, referrals
from shared.contracts.sections.attribution import AttributionPolicy
from shared.telemetry import extract_context

_STATUS_OF = {"allow": "active", "flag": "flagged", "reject": "rejected"}


@dataclass(frozen=True)
class SignupLimits:
    """How late a signup may say it happened, and how long an unknown click or code is
    waited for."""

    bounds: TimeBounds
    pending_limit: timedelta


async def _attribute(
    conn: asyncpg.Connection, signup: dict[str, Any], policy: AttributionPolicy
) -> tuple[Decision, Click | None, Click | None, UUID | None]:
    """(attribution decision, the click it used, the click the signup named, the referrer the
    fraud rules judge), all as of the signup's own time."""
    program_id, at = signup["program_id"], signup["signed_up_at"]
    if signup["existing_customer"] and policy.exclude_existing_customers:
        return Decision(None, "existing_customer"), None, None, None
    if signup["click_id"] is None:
        if not policy.allow_code_without_click:
            return Decision(None, "code_without_click_not_allowed"), None, None, None
        code = signup["referral_code"] or ""
        referrer = await inputs.participant_by_code(conn, program_id, code)
        return Decision(referrer, "code" if referrer else "unknown_code"), None, None, referrer
    click = named = await inputs.get_click(conn, signup["click_id"])
    _link_to_click_trace(named)
    if (
        click is not None
        and policy.model == "first_click"
        and click.visitor_hash
        and click.program_id == program_id
    ):
        since = at - timedelta(days=policy.window_days)
        earlier = await inputs.visitor_clicks(conn, program_id, click.visitor_hash, since)
        click = first_click(click, earlier, signed_up_at=at, window_days=policy.window_days)
    decision = attribute_click(
        click, program_id=program_id, signed_up_at=at, window_days=policy.window_days
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


@dataclass
class Verdict:
    """What ``decide`` concluded besides the signup's own columns."""

    fired: list[Fired]
    variant: str | None
    waiting_for: str | None  # "click" / "code": not decidable yet
    referrer_external_user_id: str | None = None


async def decide(conn: asyncpg.Connection, signup: dict[str, Any], now: datetime) -> Verdict:
    """Attribute ``signup`` (a signups row as a dict) and judge it with the fraud rules in
    force at its ``signed_up_at``, filling its decision columns. Used on receipt and, for a
    pending signup, when its click or code arrives: the same facts give the same decision."""
    at = signup["signed_up_at"]
    version, attribution, fraud_policy = await inputs.policies_in_force(
        conn, signup["program_id"], at
    )
    decision, click, named, candidate = await _attribute(conn, signup, attribution)
    signup.update(
        referrer_id=None,
        candidate_referrer_id=candidate,
        attributed=False,
        reason=decision.reason,
        status="unattributed",
        program_version=version,
        decided_at=now,
        pending_until=None,
    )
    if decision.reason in WAITING_FOR:
        return Verdict([], None, WAITING_FOR[decision.reason])
    referrer = await inputs.participant(conn, candidate) if candidate is not None else None
    if referrer is not None and referrer["erased_at"] is not None:
        # An erased participant's code and links stop working: nobody is credited.
        signup.update(candidate_referrer_id=None, reason="referrer_erased")
        return Verdict([], None, None)
    if candidate is None:
        return Verdict([], None, None)
    external = referrer["external_user_id"] if referrer else None
    ips, devices = (
        await referrals.referrer_fingerprints(conn, signup["program_id"], external)
        if external
        else (frozenset(), frozenset())
    )
    hour, day, ip_day = await referrals.velocity_counts(
        conn, signup["program_id"], candidate, signup["ip_hash"], at, signup["id"]
    )
    facts = SignupFacts(
        customer_id=signup["customer_id"],
        referrer_external_user_id=external,
        email_hash=signup["email_hash"],
        email_disposable=signup["email_disposable"],
        referrer_email_hash=referrer["email_hash"] if referrer else None,
        ip_hash=signup["ip_hash"],
        device_hash=signup["device_hash"],
        referrer_ip_hashes=ips,
        referrer_device_hashes=devices,
        referrer_signups_last_hour=hour,
        referrer_signups_last_day=day,
        ip_signups_last_day=ip_day,
        click_attributable=click.attributable if click is not None else None,
        # How long after the click the user saw last (under first-click, not the chosen one).
        seconds_since_click=(at - named.clicked_at).total_seconds() if named else None,
    )
    fired = evaluate(fraud_policy, facts)
    status = _STATUS_OF[outcome(fired)]
    signup["status"] = status
    if status == "rejected":  # the top-level reason names the rule that rejected it
        signup["reason"] = deciding_rule(fired)
    if status == "active":
        signup.update(referrer_id=candidate, attributed=True)
        if decision.reason == "non_attributable_click":
            signup["reason"] = "non_attributable_click_allowed"
    return Verdict(fired, referrer["variant"] if referrer else None, None, external)


async def record_decision(
    conn: asyncpg.Connection, signup: dict[str, Any], verdict: Verdict, now: datetime
) -> list[dict[str, Any]]:
    """The fraud decision and the referral event of a decided signup with a candidate (the
    only place they are written, so each goes out once). Returns the rules as JSON."""
    if signup["candidate_referrer_id"] is None:
        return []
    rules_json = [f.as_json() for f in verdict.fired]
    await referrals.insert_decision(
        conn, signup["id"], signup["program_id"], outcome(verdict.fired), rules_json, now
    )
    outcomes = [f.outcome() for f in verdict.fired]
    if signup["status"] == "active":
        await enqueue_signed_up(conn, signup, verdict.variant, verdict.referrer_external_user_id)
    elif signup["status"] == "flagged":
        await enqueue_flagged(conn, signup, outcomes, now)
    else:
        await enqueue_rejected(conn, signup, outcomes, now)
    return rules_json


def _new_signup(
    program_id: UUID,
    body: SignupIn,
    hasher: Hasher,
    occurred_at: datetime,
    now: datetime,
    existing_customer: bool,
) -> dict[str, Any]:
    domain = email_domain(body.email) if body.email else None
    return {
        "id": uuid.uuid4(),
        "program_id": program_id,
        "customer_id": body.customer_id,
        "click_id": body.click_id,
        "referral_code": body.referral_code.strip() if body.referral_code else None,
        "signed_up_at": occurred_at,
        "received_at": now,
        "email_hash": hasher.email(body.email),
        "email_domain_hash": hasher.domain(body.email),
        "email_disposable": bool(domain and is_disposable(domain)),
        "ip_hash": hasher.ip(body.ip),
        "device_hash": hasher.device(body.device_id),
        "user_agent_hash": hasher.user_agent(body.user_agent),
        "existing_customer": existing_customer,
        "billing_customer_id": body.billing_customer_id,
    }


async def track_signup(
    conn: asyncpg.Connection,
    program_id: UUID,
    body: SignupIn,
    hasher: Hasher,
    now: datetime,
    limits: SignupLimits,
) -> tuple[int, dict[str, Any]]:
    """201 with the decision; 202 when it waits for its click or code (``pending``); 200 with
    the current state when the customer is known already."""
    existing = await referrals.signup_of_customer(conn, program_id, body.customer_id)
    if existing is not None:
        return 200, await signup_out(conn, existing)
    signed_up_at = occurred_at(body.occurred_at, now, limits.bounds)
    # The company says so on the call, or told us in bulk (an imported existing customer).
    existing_customer = body.existing_customer or await customers.is_imported(
        conn, program_id, hasher.customer(body.customer_id)
    )
    values = _new_signup(program_id, body, hasher, signed_up_at, now, existing_customer)
    verdict = await decide(conn, values, now)
    if verdict.waiting_for is not None:
        values.update(
            status="pending",
            reason=f"waiting_for_{verdict.waiting_for}",
            candidate_referrer_id=None,
            decided_at=None,
            pending_until=now + limits.pending_limit,
        )
    if not await referrals.insert_signup(conn, values):
        # A concurrent request for the same customer won; answer with its result.
        return 200, await signup_out(
            conn, await referrals.signup_of_customer(conn, program_id, body.customer_id)
        )
    if verdict.waiting_for is not None:
        await enqueue_pending(conn, values, verdict.waiting_for, values["pending_until"])
        return 202, await signup_out(conn, values, rules=[])
    rules = await record_decision(conn, values, verdict, now)
    return 201, await signup_out(conn, values, rules=rules)


async def signup_out(
    conn: asyncpg.Connection,
    row: dict[str, Any] | asyncpg.Record,
    rules: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The answer to a signup; ``rules`` when the caller has just decided them."""
    if rules is None:
        decision = await referrals.decision(conn, row["id"])
        rules = decision["rules"] if decision else []
    return SignupOut(
        signup_id=row["id"],
        customer_id=row["customer_id"],
        attributed=row["attributed"],
        referrer_id=row["referrer_id"],
        reason=row["reason"],
        status=row["status"],
        rules=rules,
        occurred_at=row["signed_up_at"],
        received_at=row["received_at"],
        decided_at=row["decided_at"],
        pending_until=row["pending_until"],
    ).model_dump(mode="json")
