"""``with_params``: the click id goes onto the destination URL, and nothing else changes."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.links.gateway.cache import with_params

CLICK = "6f1c2d3e-0000-4000-8000-000000000001"


def _query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def test_appends_the_click_id() -> None:
    assert (
        with_params("https://shop.example.com/landing", {"ref_click": CLICK})
        == f"https://shop.example.com/landing?ref_click={CLICK}"
    )


def test_keeps_existing_params_in_order() -> None:
    url = with_params("https://shop.example.com/p?utm_source=ref&b=2&b=3", {"ref_click": CLICK})
    assert _query(url) == [("utm_source", "ref"), ("b", "2"), ("b", "3"), ("ref_click", CLICK)]


@pytest.mark.parametrize(
    "destination",
    [
        "https://shop.example.com/p?ref_click=evil",
        "https://shop.example.com/p?ref_click=evil&ref_click=worse",
        "https://shop.example.com/p?ref_click=",
    ],
)
def test_replaces_a_param_with_the_same_name(destination: str) -> None:
    url = with_params(destination, {"ref_click": CLICK})
    assert [v for k, v in _query(url) if k == "ref_click"] == [CLICK]
    assert "evil" not in url and "worse" not in url


def test_keeps_scheme_host_port_path_and_fragment() -> None:
    destination = "http://user@shop.example.com:8443/a/b%20c/?x=1#section-2"
    url = with_params(destination, {"rc": CLICK})
    before, after = urlsplit(destination), urlsplit(url)
    assert after.scheme == "http"
    assert after.netloc == "user@shop.example.com:8443"
    assert after.path == "/a/b%20c/"
    assert after.fragment == "section-2"
    assert _query(url) == [("x", "1"), ("rc", CLICK)]
    assert (before.scheme, before.netloc, before.path) == (after.scheme, after.netloc, after.path)


def test_encoded_values_survive() -> None:
    url = with_params("https://s.example/?next=%2Fcart%3Fa%3D1%26b%3D2&q=a+b", {"ref_click": CLICK})
    assert _query(url) == [("next", "/cart?a=1&b=2"), ("q", "a b"), ("ref_click", CLICK)]


def test_other_param_names_are_untouched() -> None:
    url = with_params("https://s.example/?REF_CLICK=x&ref_click_old=y", {"ref_click": CLICK})
    assert _query(url) == [("REF_CLICK", "x"), ("ref_click_old", "y"), ("ref_click", CLICK)]


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=10)
values = st.text(max_size=20)


@given(
    existing=st.lists(st.tuples(names, values), max_size=6),
    param=names,
    value=st.uuids().map(str),
    path=st.sampled_from(["", "/", "/landing", "/a/b/"]),
)
def test_with_params_property(
    existing: list[tuple[str, str]], param: str, value: str, path: str
) -> None:
    destination = f"https://shop.example.com{path}"
    if existing:
        destination += "?" + urlencode(existing)
    url = with_params(destination, {param: value})
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "shop.example.com", path)
    assert _query(url) == [(k, v) for k, v in existing if k != param] + [(param, value)]
