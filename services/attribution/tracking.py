"""What the tracking calls do, inside the caller's transaction: attribute, judge, record,
publish. Decisions are delegated to the pure modules ``policy`` and ``fraud``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from opentelemetry import trace

from services.attribution import publishing as publish
from services.attribution import repository as repo
from services.attribution.fraud import SignupFacts, evaluate, outcome
from services.attribution.models import ConversionIn, RefundIn, SignupIn
from services.attribution.pii import Hasher, email_domain
from services.attribution.policy import (
    Click,
    Decision,
    attribute_click,
    first_click,
    qualify,
)
from shared.contracts.referrals import RuleOutcome
from shared.contracts.sections.attribution import AttributionPolicy
from shared.http.problems import Problem
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
        referrer = await repo.participant_by_code(conn, program_id, body.referral_code or "")
        return Decision(referrer, "code" if referrer else "unknown_code"), None, None, referrer
    click = named = await repo.get_click(conn, body.click_id)
    _link_to_click_trace(named)
    if (
        click is not None
        and policy.model == "first_click"
        and click.visitor_hash
        and click.program_id == program_id
    ):
        since = now - timedelta(days=policy.window_days)
        earlier = await repo.visitor_clicks(conn, program_id, click.visitor_hash, since)
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


async def signup(
    conn: asyncpg.Connection, program_id: UUID, body: SignupIn, hasher: Hasher, now: datetime
) -> tuple[int, dict[str, Any]]:
    existing = await repo.get_signup(conn, program_id, body.customer_id)
    if existing is not None:
        return 200, await signup_out(conn, existing)
    version, attribution, fraud_policy = await repo.policies_in_force(conn, program_id, now)
    decision, click, named, candidate = await _attribute(conn, program_id, body, attribution, now)
    values: dict[str, Any] = {
        "id": publish.new_id(),
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
    referrer = None
    referrer = await repo.participant(conn, candidate) if candidate is not None else None
    if referrer is not None and referrer["erased_at"] is not None:
        # An erased participant's code and links stop working: nobody is credited.
        candidate = None
        values.update(candidate_referrer_id=None, reason="referrer_erased")
    if candidate is not None:
        external = referrer["external_user_id"] if referrer else None
        ips, devices = (
            await repo.referrer_fingerprints(conn, program_id, external)
            if external
            else (frozenset(), frozenset())
        )
        hour, day, ip_day = await repo.velocity_counts(
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
        if status == "active":
            values["referrer_id"] = candidate
            values["attributed"] = True
            if decision.reason == "non_attributable_click":
                values["reason"] = "non_attributable_click_allowed"
    if not await repo.insert_signup(conn, values):
        # A concurrent request for the same customer won; answer with its result.
        return 200, await signup_out(
            conn, await repo.get_signup(conn, program_id, body.customer_id)
        )
    if candidate is None:
        return 201, await signup_out(conn, values, rules=[])
    rules_json = [f.as_json() for f in fired]
    await repo.insert_decision(conn, values["id"], program_id, outcome(fired), rules_json, now)
    outcomes = [f.outcome() for f in fired]
    if values["status"] == "active":
        await publish.signed_up(conn, values, referrer["variant"] if referrer else None)
    elif values["status"] == "flagged":
        await publish.flagged(conn, values, outcomes, now)
    else:
        await publish.rejected(conn, values, outcomes, now)
    return 201, await signup_out(conn, values, rules=rules_json)


async def signup_out(
    conn: asyncpg.Connection,
    row: dict[str, Any] | asyncpg.Record,
    rules: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The answer to a signup; ``rules`` when the caller has just decided them."""
    if rules is None:
        decision = await repo.decision(conn, row["id"])
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


def _conversion_out(signup: Any, conversion: Any) -> dict[str, Any]:
    return {
        "conversion_id": str(conversion["id"]),
        "referral_id": str(signup["id"]),
        "referrer_id": str(signup["referrer_id"] or signup["candidate_referrer_id"]),
        "order_id": conversion["order_id"],
        "program_version": conversion["program_version"],
        "qualified": conversion["qualified"],
        "reason": conversion["reason"],
        "sequence": conversion["sequence"],
        "published": conversion["published"],
    }


async def conversion(
    conn: asyncpg.Connection, program_id: UUID, body: ConversionIn, now: datetime
) -> tuple[int, dict[str, Any]]:
    # Round trips are the cost of this call: the lock, one read of everything the verdict
    # needs, one statement for the row and its event.
    signup_row = await repo.signup_for_conversion(conn, program_id, body.customer_id)
    if signup_row is None:
        raise Problem(
            422, "unknown-customer", "No signup was tracked for this customer", field="customer_id"
        )
    if signup_row["status"] == "unattributed":
        raise Problem(
            422,
            "customer-not-referred",
            f"This customer's signup was not attributed ({signup_row['reason']})",
            field="customer_id",
        )
    context = await repo.conversion_context(conn, program_id, body.order_id, signup_row["id"], now)
    if context["existing"] is not None:
        existing = await repo.get_conversion(conn, program_id, body.order_id)
        if existing["signup_id"] != signup_row["id"]:
            raise Problem(
                409,
                "order-already-tracked",
                "This order id was tracked for another customer",
                field="order_id",
            )
        return 200, _conversion_out(signup_row, existing)
    version = context["version"]
    if version is None:
        attribution = AttributionPolicy()
    else:
        attribution, _ = await repo.policies_of(conn, program_id, version)
    values: dict[str, Any] = {
        "id": publish.new_id(),
        "signup_id": signup_row["id"],
        "program_id": program_id,
        "order_id": body.order_id,
        "amount": body.amount,
        "currency": body.currency,
        "converted_at": now,
        "program_version": version,
        "published": False,
        "sequence": None,
    }
    if signup_row["status"] == "rejected":
        values.update(qualified=False, reason="referral_rejected")
    else:
        verdict = qualify(
            attribution.qualification,
            signed_up_at=signup_row["signed_up_at"],
            converted_at=now,
            amount=body.amount,
            currency=body.currency,
            earlier=list(context["earlier"]),
        )
        values.update(qualified=verdict.qualified, reason=verdict.reason, sequence=verdict.sequence)
        if verdict.qualified and signup_row["status"] == "flagged":
            values["reason"] = f"{verdict.reason}_held_for_review"
        values["published"] = verdict.qualified and signup_row["status"] == "active"
    event = None
    if values["published"]:
        event = publish.converted_row(signup_row, values, signup_row["referrer_variant"])
    if not await repo.insert_conversion_with_event(conn, values, event):
        # Only another customer's order can get here (ours are serialised by the lock).
        raise Problem(
            409, "order-already-tracked", "This order id was tracked already", field="order_id"
        )
    return 201, _conversion_out(signup_row, values)


async def _variant(conn: asyncpg.Connection, participant_id: UUID | None) -> str | None:
    if participant_id is None:
        return None
    return await conn.fetchval(
        "SELECT variant FROM participants WHERE participant_id = $1", participant_id
    )


def _refund_out(refund: Any, conversion: Any, refunded_total: int) -> dict[str, Any]:
    return {
        "refund_id": refund["refund_id"],
        "order_id": conversion["order_id"],
        "conversion_id": str(conversion["id"]),
        "amount": refund["amount"],
        "currency": conversion["currency"],
        "refunded_total": refunded_total,
        "full": refund["full_refund"],
        "published": refund["published"],
    }


async def refund(
    conn: asyncpg.Connection, program_id: UUID, body: RefundIn, now: datetime
) -> tuple[int, dict[str, Any]]:
    conversion_row = await repo.get_conversion(conn, program_id, body.order_id, lock=True)
    if conversion_row is None:
        raise Problem(
            422, "unknown-order", "No conversion was tracked for this order", field="order_id"
        )
    existing = await repo.get_refund(conn, program_id, body.refund_id)
    if existing is not None:
        if existing["conversion_id"] != conversion_row["id"] or (
            body.amount is not None and body.amount != existing["amount"]
        ):
            raise Problem(
                409,
                "refund-already-tracked",
                "This refund id was tracked with another order or amount",
                field="refund_id",
            )
        return 200, _refund_out(existing, conversion_row, conversion_row["refunded_amount"])
    if body.currency is not None and body.currency != conversion_row["currency"]:
        raise Problem(
            422,
            "currency-mismatch",
            f"The order was in {conversion_row['currency']}",
            field="currency",
        )
    left = conversion_row["amount"] - conversion_row["refunded_amount"]
    if left == 0:
        raise Problem(409, "already-refunded", "This order is fully refunded", field="order_id")
    amount = left if body.amount is None else body.amount
    if amount > left:
        raise Problem(
            422,
            "refund-exceeds-order",
            f"At most {left} minor units of this order are left to refund",
            field="amount",
        )
    total = conversion_row["refunded_amount"] + amount
    values = {
        "id": publish.new_id(),
        "program_id": program_id,
        "refund_id": body.refund_id,
        "conversion_id": conversion_row["id"],
        "amount": amount,
        "full_refund": total == conversion_row["amount"],
        # Only a conversion that was announced needs announcing its reversal.
        "published": conversion_row["published"],
        "refunded_at": now,
    }
    inserted = await conn.fetchval(
        "INSERT INTO refunds (id, program_id, refund_id, conversion_id, amount, full_refund, "
        "published, refunded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT (program_id, refund_id) DO NOTHING RETURNING true",
        *values.values(),
    )
    if not inserted:
        raise Problem(
            409, "refund-already-tracked", "This refund id was tracked already", field="refund_id"
        )
    await conn.execute(
        "UPDATE conversions SET refunded_amount = $2 WHERE id = $1", conversion_row["id"], total
    )
    if values["published"]:
        signup_row = await conn.fetchrow(
            "SELECT * FROM signups WHERE id = $1", conversion_row["signup_id"]
        )
        await publish.reversed_(conn, signup_row, conversion_row, values)
    return 201, _refund_out(values, conversion_row, total)


async def review(
    conn: asyncpg.Connection,
    program_id: UUID,
    referral_id: UUID,
    *,
    approve: bool,
    note: str | None,
    now: datetime,
) -> asyncpg.Record:
    """Approve (it proceeds as if allowed) or reject a flagged referral."""
    row = await repo.signup_by_id(conn, program_id, referral_id, lock=True)
    if row is None:
        raise Problem(404, "referral-not-found", "No such referral", field="referral_id")
    if row["status"] != "flagged":
        raise Problem(
            409,
            "not-flagged",
            f"Only a flagged referral can be reviewed; this one is {row['status']}",
            field="referral_id",
        )
    if not approve:
        await repo.set_status(conn, referral_id, "rejected", None, note)
        await publish.rejected(
            conn, row, [RuleOutcome(rule="review", action="reject", reason=note or "")], now
        )
        return await repo.signup_by_id(conn, program_id, referral_id)
    referrer_id = row["candidate_referrer_id"]
    await repo.set_status(conn, referral_id, "active", referrer_id, note)
    approved = await repo.signup_by_id(conn, program_id, referral_id)
    variant = await _variant(conn, referrer_id)
    await publish.signed_up(conn, approved, variant)
    # What was held while it waited goes out now, in order: conversions, then their refunds.
    for held in await repo.conversions_of(conn, referral_id):
        if not held["qualified"] or held["published"]:
            continue
        await conn.execute(
            "UPDATE conversions SET published = true, reason = $2 WHERE id = $1",
            held["id"],
            held["reason"].removesuffix("_held_for_review"),
        )
        await publish.converted(conn, approved, held, variant)
        for refund_row in await repo.refunds_of(conn, held["id"]):
            await conn.execute(
                "UPDATE refunds SET published = true WHERE id = $1", refund_row["id"]
            )
            await publish.reversed_(conn, approved, held, refund_row)
    return approved
