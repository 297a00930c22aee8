"""Stripe events shaped as Stripe's API sends them, and deliveries signed with the official
library's own signing code (``stripe.WebhookSignature.generate_signature_header``)."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

import stripe


def new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(24)}"


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def event(kind: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    return {
        "id": _id("evt"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": created or int(time.time()),
        "livemode": False,
        "type": kind,
        "data": {"object": obj},
    }


def invoice_paid(
    *,
    customer: str | None = None,
    metadata: dict[str, str] | None = None,
    amount: int = 4999,
    currency: str = "usd",
    billing_reason: str = "subscription_create",
    subscription: str | None = None,
    paid_at: int | None = None,
) -> dict[str, Any]:
    invoice = {
        "id": _id("in"),
        "object": "invoice",
        "customer": customer or _id("cus"),
        "amount_paid": amount,
        "currency": currency,
        "billing_reason": billing_reason,
        "subscription": subscription or _id("sub"),
        "payment_intent": _id("pi"),
        "charge": _id("ch"),
        "metadata": metadata or {},
        "status": "paid",
        "status_transitions": {"paid_at": paid_at or int(time.time()) - 5},
    }
    return event("invoice.paid", invoice)


def checkout_completed(
    *,
    client_reference_id: str | None = None,
    metadata: dict[str, str] | None = None,
    mode: str = "payment",
    amount: int = 2500,
    payment_status: str = "paid",
) -> dict[str, Any]:
    session = {
        "id": _id("cs"),
        "object": "checkout.session",
        "mode": mode,
        "client_reference_id": client_reference_id,
        "customer": None,
        "amount_total": amount,
        "currency": "eur",
        "payment_status": payment_status,
        "payment_intent": _id("pi") if mode == "payment" else None,
        "subscription": _id("sub") if mode == "subscription" else None,
        "invoice": None,
        "metadata": metadata or {},
    }
    return event("checkout.session.completed", session)


def charge_refunded(
    paid: dict[str, Any], *, amount_refunded: int, currency: str = "usd"
) -> dict[str, Any]:
    """A refund of the charge behind ``paid`` (an invoice.paid or checkout event)."""
    obj = paid["data"]["object"]
    charge = {
        "id": obj.get("charge") or _id("ch"),
        "object": "charge",
        "amount": obj.get("amount_paid") or obj.get("amount_total"),
        "amount_refunded": amount_refunded,
        "currency": currency,
        "payment_intent": obj.get("payment_intent"),
        "invoice": obj["id"] if obj["object"] == "invoice" else None,
        "refunded": amount_refunded == (obj.get("amount_paid") or obj.get("amount_total")),
    }
    return event("charge.refunded", charge)


def signed(
    payload: dict[str, Any], secret: str, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery Stripe would make."""
    body = json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)
    return body.encode(), {"Stripe-Signature": header, "Content-Type": "application/json"}
