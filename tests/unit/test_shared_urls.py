"""The URL check reads URLs as browsers do (WHATWG) and refuses what parsers disagree on."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.http.urls import WEB_URL_PATTERN, UrlRefused, checked_url, parse_web_url

GOOD = ["good.example"]


def _refusal(url: str, allowed: list[str] = GOOD) -> str:
    with pytest.raises(UrlRefused) as caught:
        checked_url(url, allowed_hosts=allowed)
    return str(caught.value)


def test_the_reported_backslash_redirect_is_refused() -> None:
    # Python reads the host as good.example; a browser goes to evil.example.
    assert "backslash" in _refusal("https://evil.example\\@good.example/")


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://good.example/", "https://good.example/"),
        ("https://good.example", "https://good.example/"),
        ("HTTPS://GOOD.Example/Path?q=1#frag", "https://good.example/Path?q=1#frag"),
        ("https://good.example:443/", "https://good.example/"),
        ("http://good.example:8080/x", "http://good.example:8080/x"),
        ("https://good.example/a/../b", "https://good.example/b"),
        ("https://good.example./", "https://good.example./"),
        ("https://good.example/%2F%2Fevil.example", "https://good.example/%2F%2Fevil.example"),
        ("https://good.example/?next=//evil.example", "https://good.example/?next=//evil.example"),
    ],
)
def test_accepts_and_normalises(url: str, normalised: str) -> None:
    assert checked_url(url, allowed_hosts=GOOD) == normalised


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # parser differences and characters browsers drop or rewrite
        ("https://evil.example\\good.example/", "backslash"),
        ("https://good.example\\.evil.example/", "backslash"),
        ("https://evil.example/\\good.example", "backslash"),
        ("https://good.exa\tmple/", "control"),
        ("https://good.example\n.evil.example/", "control"),
        ("https://good.example/\r\n", "control"),
        (" https://good.example/", "spaces"),
        ("https://good.example/ x", "spaces"),
        ("https://good.example\u00a0/", "spaces"),
        ("https://good.example\u200b.evil.example/", "control"),
        ("https://good.example\x00.evil.example/", "control"),
        ("https:///good.example/", "absolute http(s)"),
        ("https:good.example/", "absolute http(s)"),
        ("http://0x7f.1/", "read differently"),
        ("http://2130706433/", "read differently"),
        ("https://good%2eexample/", "read differently"),
        ("https://evil.example%2f@good.example/", "user name or password"),
        ("https://good.example:99999/", "absolute http(s)"),
        ("https://[::1/", "absolute http(s)"),
        # hosts a browser would visit that are not allowed
        ("https://evil.example/", "not in allowed_hosts"),
        ("https://good.example@evil.example/", "not in allowed_hosts"),
        ("https://good.example.evil.example/", "not in allowed_hosts"),
        ("https://evilgood.example/", "not in allowed_hosts"),
        ("https://g00d.example/", "not in allowed_hosts"),
        # look-alike hosts: Cyrillic o (U+043E) twice, as typed and as punycode
        ("https://g\u043e\u043ed.example/", "'xn--gd-fmca.example' is not in allowed_hosts"),
        ("https://xn--gd-fmca.example/", "not in allowed_hosts"),
        ("https://good.example..evil.example/", "read differently"),
        # credentials that make a URL read as another host to a person
        ("https://evil.example@good.example/", "user name or password"),
        ("https://user:pass@good.example/", "user name or password"),
        ("https://:@good.example/", "user name or password"),
        # not http(s)
        ("javascript:alert(1)", "absolute http(s)"),
        ("JaVaScRiPt://good.example/%0aalert(1)", "absolute http(s)"),
        ("data:text/html,<script>alert(1)</script>", "absolute http(s)"),
        ("ftp://good.example/", "absolute http(s)"),
        ("//good.example/", "absolute http(s)"),
        ("/relative", "absolute http(s)"),
        ("", "absolute http(s)"),
    ],
)
def test_refuses(url: str, reason: str) -> None:
    assert reason in _refusal(url)


def test_idn_hosts_are_compared_in_their_ascii_form() -> None:
    assert checked_url("https://bücher.example/", allowed_hosts=["xn--bcher-kva.example"]) == (
        "https://xn--bcher-kva.example/"
    )
    assert checked_url("https://xn--bcher-kva.example/", allowed_hosts=["Bücher.example"]) == (
        "https://xn--bcher-kva.example/"
    )


def test_allowed_hosts_are_compared_case_and_trailing_dot_insensitively() -> None:
    assert checked_url("https://GOOD.example./", allowed_hosts=["Good.Example"])
    assert checked_url("https://good.example/", allowed_hosts=["good.example."])


def test_any_host_when_no_allowed_hosts_are_given() -> None:
    assert checked_url("https://anywhere.example/") == "https://anywhere.example/"


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("http://[::1]:8080/", "::1", 8080),
        ("http://[0:0:0:0:0:0:0:1]/", "::1", 80),
        ("https://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1", 443),
        ("http://127.0.0.1/", "127.0.0.1", 80),
        ("HTTP://Hooks.Example:0080/x", "hooks.example", 80),
    ],
)
def test_parse_gives_the_browser_host_and_port(url: str, host: str, port: int) -> None:
    parsed = parse_web_url(url)
    assert (parsed.host, parsed.port) == (host, port)


@settings(max_examples=500, deadline=None)
@given(st.from_regex(WEB_URL_PATTERN, fullmatch=True))
def test_every_url_the_documented_pattern_admits_passes_the_check(url: str) -> None:
    # The OpenAPI documents state WEB_URL_PATTERN: a request it admits must not be refused.
    checked_url(url, allowed_hosts=[])


@pytest.mark.parametrize(
    "url",
    ["http://0", "http://0x7f/", "http://1.2.3.256/", "http://a:65536/", "http://a/\\x"],
)
def test_the_documented_pattern_leaves_out_what_parsers_read_differently(url: str) -> None:
    assert re.fullmatch(WEB_URL_PATTERN, url) is None
