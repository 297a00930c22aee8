"""The pure reading of Stripe events: which become a purchase or a refund (with amount,
currency, time, customer and the Stripe ids a refund may name later) and which are ignored,
with their reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.attribution.stripe_mapping import (
    ChargeRefund,
    Customer,
    CustomerSource,
    Ignored,
    Purchase,
    Unusable,
    read_event,
)
from services.attribution.stripe_webhooks import verify
from shared.http.problems import Problem
from tests.stripe_events import (
    charge_refunded,
    checkout_completed,
    event,
    invoice_paid,
    new_secret,
    signed,
)

SOURCE = CustomerSource()


def test_a_paid_invoice_is_a_purchase_at_its_paid_time() -> None:
    ev = invoice_paid(
        customer="cus_1", metadata={"customer_id": "c-42"}, amount=1999, paid_at=1_700_000_000
    )
    reading = read_event(ev, SOURCE)
    invoice = ev["data"]["object"]
    assert reading == Purchase(
        order_id=invoice["id"],
        amount=1999,
        currency="USD",
        occurred_at=datetime.fromtimestamp(1_700_000_000, UTC),
        customer=Customer("c-42", "cus_1"),
        payment_ids=(invoice["id"], invoice["payment_intent"], invoice["charge"]),
    )


def test_a_renewal_is_a_purchase_too_and_its_customer_may_come_from_the_subscription() -> None:
    ev = invoice_paid(billing_reason="subscription_cycle", customer="cus_2")
    ev["data"]["object"]["parent"] = {
        "subscription_details": {"metadata": {"customer_id": "c-7"}, "subscription": "sub_1"}
    }
    reading = read_event(ev, SOURCE)
    assert isinstance(reading, Purchase) and reading.customer == Customer("c-7", "cus_2")


def test_a_paid_invoice_without_paid_at_happened_when_the_event_was_created() -> None:
    ev = invoice_paid()
    ev["data"]["object"]["status_transitions"] = {"paid_at": None}
    ev["created"] = 1_700_000_500
    reading = read_event(ev, SOURCE)
    assert isinstance(reading, Purchase)
    assert reading.occurred_at == datetime.fromtimestamp(1_700_000_500, UTC)


def test_the_metadata_key_is_the_endpoints_own_and_may_be_switched_off() -> None:
    ev = invoice_paid(customer="cus_3", metadata={"customer_id": "a", "user": "b"})
    by_user = read_event(ev, CustomerSource(metadata_key="user"))
    by_stripe_only = read_event(ev, CustomerSource(metadata_key=None))
    assert isinstance(by_user, Purchase) and by_user.customer == Customer("b", "cus_3")
    assert isinstance(by_stripe_only, Purchase)
    assert by_stripe_only.customer == Customer(None, "cus_3")


def test_a_one_off_checkout_is_a_purchase_of_its_client_reference() -> None:
    ev = checkout_completed(client_reference_id="c-9", metadata={"customer_id": "other"})
    session = ev["data"]["object"]
    reading = read_event(ev, SOURCE)
    assert reading == Purchase(
        order_id=session["id"],
        amount=2500,
        currency="EUR",
        occurred_at=datetime.fromtimestamp(ev["created"], UTC),
        customer=Customer("c-9", None),
        payment_ids=(session["id"], session["payment_intent"]),
    )
    without_reference = read_event(ev, CustomerSource(client_reference_id=False))
    assert isinstance(without_reference, Purchase)
    assert without_reference.customer.customer_id == "other"


@pytest.mark.parametrize(
    ("ev", "reason"),
    [
        (checkout_completed(mode="subscription"), "subscription_counted_by_invoice"),
        (checkout_completed(payment_status="unpaid"), "not_paid"),
        (checkout_completed(amount=0), "zero_amount"),
        (invoice_paid(amount=0), "zero_amount"),
        (event("customer.created", {"id": "cus_1"}), "unhandled_type"),
        (event("invoice.payment_failed", {"id": "in_1"}), "unhandled_type"),
    ],
)
def test_events_with_nothing_to_count_are_ignored_with_a_reason(ev: dict, reason: str) -> None:
    assert read_event(ev, SOURCE) == Ignored(reason)


def test_a_checkout_that_made_an_invoice_is_counted_by_the_invoice() -> None:
    ev = checkout_completed(client_reference_id="c-1")
    ev["data"]["object"]["invoice"] = "in_123"
    assert read_event(ev, SOURCE) == Ignored("invoice_counted_by_invoice")


def test_a_refunded_charge_carries_its_running_total_and_payment_ids() -> None:
    paid = invoice_paid()
    invoice = paid["data"]["object"]
    ev = charge_refunded(paid, amount_refunded=1000)
    assert read_event(ev, SOURCE) == ChargeRefund(
        charge_id=invoice["charge"],
        refunded_total=1000,
        currency="USD",
        occurred_at=datetime.fromtimestamp(ev["created"], UTC),
        payment_ids=(invoice["charge"], invoice["payment_intent"], invoice["id"]),
    )


def test_a_handled_event_missing_what_it_needs_is_unusable() -> None:
    ev = invoice_paid()
    del ev["data"]["object"]["amount_paid"]
    assert read_event(ev, SOURCE) == Unusable("missing or invalid amount_paid")
    assert read_event(event("invoice.paid", "nope"), SOURCE) == Unusable(  # type: ignore[arg-type]
        "missing data.object"
    )


def test_signatures_by_either_secret_verify_and_others_are_refused() -> None:
    old, new, stranger = new_secret(), new_secret(), new_secret()
    body, headers = signed(invoice_paid(), new)
    verify(body, headers["Stripe-Signature"], [old, new], 300)
    with pytest.raises(Problem) as refused:
        verify(body, headers["Stripe-Signature"], [old, stranger], 300)
    assert refused.value.type == "bad-stripe-signature" and refused.value.status == 400
    with pytest.raises(Problem) as tampered:
        verify(body + b" ", headers["Stripe-Signature"], [new], 300)
    assert tampered.value.type == "bad-stripe-signature"


def test_an_old_signature_is_refused_as_stale() -> None:
    secret = new_secret()
    body, headers = signed(invoice_paid(), secret, timestamp=1_700_000_000)
    with pytest.raises(Problem) as stale:
        verify(body, headers["Stripe-Signature"], [secret], 300)
    assert stale.value.type == "stale-stripe-signature" and stale.value.field == "Stripe-Signature"
    with pytest.raises(Problem) as none:
        verify(body, None, [secret], 300)
    assert none.value.type == "bad-stripe-signature"


_KEYS = [
    "id", "amount_paid", "amount_total", "amount_refunded", "currency", "customer", "metadata",
    "status_transitions", "paid_at", "parent", "subscription_details", "lines", "data",
    "payments", "payment", "mode", "subscription", "invoice", "payment_status",
    "client_reference_id", "payment_intent", "charge", "customer_id",
]  # fmt: skip
_ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.sampled_from(["", "x", "usd"]),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3)
    ),
    max_leaves=6,
)
_VALID = [
    invoice_paid(metadata={"customer_id": "c"}),
    checkout_completed(client_reference_id="c"),
    charge_refunded(invoice_paid(), amount_refunded=5),
]


@given(
    base=st.sampled_from(_VALID),
    changes=st.dictionaries(st.sampled_from(_KEYS), _ANY, max_size=4),
    created=st.integers(-(2**62), 2**62) | _ANY,
)
def test_any_signed_payload_reads_as_an_outcome_never_an_error(
    base: dict, changes: dict, created: object
) -> None:
    # Stripe retries what is answered 5xx: an oddly shaped event must be recorded, not crash.
    obj = {**base["data"]["object"], **changes}
    ev = {**base, "created": created, "data": {"object": obj}}
    reading = read_event(ev, SOURCE)
    assert isinstance(reading, Purchase | ChargeRefund | Ignored | Unusable)
    if isinstance(reading, Purchase):
        assert reading.amount > 0 and reading.currency == reading.currency.upper()
