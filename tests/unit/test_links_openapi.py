"""The links OpenAPI document states what the routes answer: each not-found route documents
its 404, and the redirect URL pattern refuses nothing ``checked_url`` would accept."""

from __future__ import annotations

import re

import pytest

from services.links.app import create_app
from services.links.programs.models import WEB_URL
from shared.http.urls import UrlRefused, checked_url

URLS = [
    "https://shop.example.com/welcome",
    "HTTP://Shop.Example.com:8080/a?b=c@d#e",
    "https://user@shop.example.com/",
    "https://shop.example.com\\@evil.example/",
    "https://shop example.com/",
    "https://shop.example.com/\x00",
    "ftp://shop.example.com/",
    "https:///no-host",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("url", URLS)
def test_the_documented_pattern_admits_what_checked_url_accepts(url: str) -> None:
    try:
        checked_url(url)
        accepted = True
    except UrlRefused:
        accepted = False
    if accepted:
        assert re.match(WEB_URL, url)
    if not re.match(WEB_URL, url):
        assert not accepted


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/programs/{program_id}"),
        ("post", "/v1/programs/{program_id}/participants"),
        ("get", "/v1/scoreboards/{token}"),
        ("get", "/qr/{code}.png"),
        ("get", "/v1/programs/{program_id}/export/rewards.csv"),
        ("get", "/v1/programs/{program_id}/participants/{participant_id}/story"),
    ],
)
def test_not_found_is_documented(method: str, path: str) -> None:
    responses = create_app().openapi()["paths"][path][method]["responses"]
    assert "application/problem+json" in responses["404"]["content"]
