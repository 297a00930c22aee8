"""Pure: what a Stripe webhook event means to the platform. A paid invoice or a completed
one-off Checkout is a purchase, a refunded charge is a refund (its running total: the delta
against what was counted before is the use case's to work out), anything else is ignored
with a reason. No I/O: the use case (``stripe_webhooks.py``) finds the customer and the
order and calls the tracking use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Event types that can change something; every other type is recorded as ignored.
HANDLED_TYPES = (
    "invoice.paid",
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "charge.refunded",
)


@dataclass(frozen=True)
class CustomerSource:
    """Where an endpoint reads the company's own customer id (the one its signups carry)."""

    client_reference_id: bool = True
    metadata_key: str | None = "customer_id"


@dataclass(frozen=True)
class Customer:
    customer_id: str | None  # the company's id, from client_reference_id or metadata
    billing_customer_id: str | None  # Stripe's customer id, as recorded at signup


@dataclass(frozen=True)
class Purchase:
    order_id: str  # the invoice or Checkout Session id
    amount: int  # minor units
    currency: str  # upper case
    occurred_at: datetime
    customer: Customer
    # Stripe ids a later charge.refunded may name (invoice, payment intent, charge).
    payment_ids: tuple[str, ...]


@dataclass(frozen=True)
class ChargeRefund:
    charge_id: str
    refunded_total: int  # the charge's amount_refunded: all refunds so far
    currency: str
    occurred_at: datetime
    payment_ids: tuple[str, ...]  # the charge, its payment intent, its invoice


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class Unusable:
    """Signed by Stripe but not shaped as its API documents (kept, listed as failed)."""

    reason: str


Reading = Purchase | ChargeRefund | Ignored | Unusable


class _Missing(Exception):
    pass


def _field(obj: dict[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _Missing(name)
    return value


def _id_of(value: Any) -> str | None:
    """A reference as Stripe sends it: an id, or an expanded object with an ``id``."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _at(unix: Any) -> datetime | None:
    if not isinstance(unix, int) or isinstance(unix, bool) or unix <= 0:
        return None
    try:
        return datetime.fromtimestamp(unix, UTC)
    except (OverflowError, OSError, ValueError):  # beyond the years a datetime holds
        return None


def _metadata_value(source: CustomerSource, *holders: Any) -> str | None:
    if source.metadata_key is None:
        return None
    for holder in holders:
        metadata = holder.get("metadata") if isinstance(holder, dict) else None
        value = metadata.get(source.metadata_key) if isinstance(metadata, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _subscription_details(invoice: dict[str, Any]) -> dict[str, Any]:
    # Older API versions put them on the invoice, newer ones under ``parent``.
    parent = invoice.get("parent")
    nested = parent.get("subscription_details") if isinstance(parent, dict) else None
    details = nested or invoice.get("subscription_details")
    return details if isinstance(details, dict) else {}


def _invoice_payment_ids(invoice: dict[str, Any]) -> tuple[str, ...]:
    ids = [invoice["id"], _id_of(invoice.get("payment_intent")), _id_of(invoice.get("charge"))]
    payments = invoice.get("payments")
    items = payments.get("data") if isinstance(payments, dict) else None
    for item in items if isinstance(items, list) else []:
        payment = item.get("payment") if isinstance(item, dict) else None
        if isinstance(payment, dict):
            ids += [_id_of(payment.get("payment_intent")), _id_of(payment.get("charge"))]
    return tuple(dict.fromkeys(i for i in ids if i))


def _paid_invoice(
    event: dict[str, Any], invoice: dict[str, Any], source: CustomerSource
) -> Reading:
    invoice_id = _field(invoice, "id", str)
    amount = _field(invoice, "amount_paid", int)
    if amount <= 0:
        # A free trial's or fully discounted invoice: nothing was bought.
        return Ignored("zero_amount")
    details = _subscription_details(invoice)
    transitions = invoice.get("status_transitions")
    paid_at = _at(transitions.get("paid_at")) if isinstance(transitions, dict) else None
    lines = invoice.get("lines")
    items = lines.get("data") if isinstance(lines, dict) else None
    first_line = items[0] if isinstance(items, list) and items else None
    customer = Customer(
        _metadata_value(source, invoice, details, first_line),
        _id_of(invoice.get("customer")),
    )
    return Purchase(
        order_id=invoice_id,
        amount=amount,
        currency=_field(invoice, "currency", str).upper(),
        occurred_at=paid_at or _event_time(event),
        customer=customer,
        payment_ids=_invoice_payment_ids(invoice),
    )


def _completed_checkout(
    event: dict[str, Any], session: dict[str, Any], source: CustomerSource
) -> Reading:
    session_id = _field(session, "id", str)
    if session.get("mode") == "subscription" or session.get("subscription"):
        # Its invoice.paid counts the purchase (and each renewal after it).
        return Ignored("subscription_counted_by_invoice")
    if _id_of(session.get("invoice")):
        # Checkout made an invoice for this payment: its invoice.paid counts it.
        return Ignored("invoice_counted_by_invoice")
    if session.get("payment_status") != "paid":
        # Paid later by a delayed method: checkout.session.async_payment_succeeded counts it.
        return Ignored("not_paid")
    amount = _field(session, "amount_total", int)
    if amount <= 0:
        return Ignored("zero_amount")
    reference = session.get("client_reference_id") if source.client_reference_id else None
    own_id = reference.strip() if isinstance(reference, str) and reference.strip() else None
    payment_intent = _id_of(session.get("payment_intent"))
    return Purchase(
        order_id=session_id,
        amount=amount,
        currency=_field(session, "currency", str).upper(),
        occurred_at=_event_time(event),
        customer=Customer(
            own_id or _metadata_value(source, session), _id_of(session.get("customer"))
        ),
        payment_ids=tuple(i for i in (session_id, payment_intent) if i),
    )


def _refunded_charge(event: dict[str, Any], charge: dict[str, Any]) -> Reading:
    charge_id = _field(charge, "id", str)
    total = _field(charge, "amount_refunded", int)
    if total <= 0:
        return Ignored("zero_amount")
    ids = (charge_id, _id_of(charge.get("payment_intent")), _id_of(charge.get("invoice")))
    return ChargeRefund(
        charge_id=charge_id,
        refunded_total=total,
        currency=_field(charge, "currency", str).upper(),
        occurred_at=_event_time(event),
        payment_ids=tuple(i for i in ids if i),
    )


def _event_time(event: dict[str, Any]) -> datetime:
    at = _at(event.get("created"))
    if at is None:
        raise _Missing("created")
    return at


def read_event(event: dict[str, Any], source: CustomerSource) -> Reading:
    """What ``event`` (a Stripe event as JSON) asks of the platform."""
    kind = event.get("type")
    if kind not in HANDLED_TYPES:
        return Ignored("unhandled_type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return Unusable("missing data.object")
    try:
        if kind == "invoice.paid":
            return _paid_invoice(event, obj, source)
        if kind == "charge.refunded":
            return _refunded_charge(event, obj)
        return _completed_checkout(event, obj, source)
    except _Missing as missing:
        return Unusable(f"missing or invalid {missing}")
