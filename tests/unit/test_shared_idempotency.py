"""Request fingerprints for ``Idempotency-Key``."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from shared.http.idempotency import request_fingerprint

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def test_key_order_does_not_matter() -> None:
    a = {"name": "p", "definition": {"destination_url": "https://x", "allowed_hosts": ["x"]}}
    b = {"definition": {"allowed_hosts": ["x"], "destination_url": "https://x"}, "name": "p"}
    assert request_fingerprint(a) == request_fingerprint(b)


def test_different_bodies_differ() -> None:
    base = {"name": "p", "amount": 1}
    assert request_fingerprint(base) != request_fingerprint({"name": "p", "amount": 2})
    assert request_fingerprint(base) != request_fingerprint({"name": "p"})
    assert request_fingerprint(base) != request_fingerprint({"name": "p", "amount": "1"})
    assert request_fingerprint([1, 2]) != request_fingerprint([2, 1])
    assert request_fingerprint(None) != request_fingerprint({})


def test_fingerprint_is_sha256_hex_and_handles_non_json_values() -> None:
    fp = request_fingerprint({"id": uuid.UUID(int=1)})
    assert len(fp) == 64
    assert int(fp, 16) >= 0
    assert fp == request_fingerprint({"id": str(uuid.UUID(int=1))})


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=8))
def test_fingerprint_ignores_insertion_order(body: dict) -> None:
    reordered = dict(reversed(list(body.items())))
    assert request_fingerprint(body) == request_fingerprint(reordered)


@given(json_values, json_values)
def test_equal_fingerprints_mean_equal_bodies(a: object, b: object) -> None:
    if request_fingerprint(a) == request_fingerprint(b):
        assert a == b
