"""Tracking API input models: money, currencies, emails and IPs are checked at the edge."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.attribution.models import ConversionIn, RefundIn, SignupIn

ORDER = {"customer_id": "c", "order_id": "o", "amount": 100, "currency": "USD"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -1}, "amount"),
        ({"amount": 10**12 + 1}, "amount"),
        ({"amount": 1.0}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"currency": "usd"}, "currency"),
        ({"currency": "XXY"}, "currency"),
        ({"currency": "MB"}, "currency"),
        ({"currency": "PERK"}, "currency"),
        ({"customer_id": ""}, "customer_id"),
        ({"order_id": "x" * 201}, "order_id"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_conversions_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        ConversionIn.model_validate({**ORDER, **changes})
    assert error.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize("currency", ["USD", "EUR", "JPY", "BHD", "CHF"])
def test_iso_currencies_are_accepted(currency: str) -> None:
    assert ConversionIn.model_validate({**ORDER, "currency": currency}).currency == currency


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({"click_id": None, "referral_code": None}, False),
        ({"email": "a@b.co"}, True),
        ({"email": "a@b"}, False),
        ({"email": "not an@email.com"}, False),
        ({"ip": "2001:db8::1"}, True),
        ({"ip": "10.0.0.256"}, False),
        ({"device_id": ""}, False),
        ({"existing_customer": True}, True),
    ],
)
def test_signups(changes: dict[str, Any], ok: bool) -> None:
    body = {"customer_id": "c", "referral_code": "ABCD1234", **changes}
    if ok:
        SignupIn.model_validate(body)
    else:
        with pytest.raises(ValidationError):
            SignupIn.model_validate(body)


def test_a_refund_without_amount_means_all_that_is_left() -> None:
    assert RefundIn.model_validate({"refund_id": "r", "order_id": "o"}).amount is None
    with pytest.raises(ValidationError):
        RefundIn.model_validate({"refund_id": "r", "order_id": "o", "amount": 0})
