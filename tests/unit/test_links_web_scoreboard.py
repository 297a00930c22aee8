"""The scoreboard page and its embed, rendered by the real routes and templates from model
instances (the read-model queries are replaced; no database)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.links.insights import scoreboards
from services.links.insights.models import (
    FriendRow,
    LeaderboardRow,
    NextMilestone,
    RewardSums,
    Scoreboard,
    ShareLink,
)
from services.links.settings import LinksSettings
from services.links.web import console_pages, rendering, scoreboard_pages

TOKEN = "tok_" + "a" * 39
ADMIN_KEY = "admin-key-for-unit-tests-0123456789"
LINK = "https://ref.example.com/r/ABCDEFGHJ"


def sample_board(**changes: Any) -> Scoreboard:
    base: dict[str, Any] = {
        "participant_id": uuid.UUID(int=1),
        "program_id": uuid.UUID(int=2),
        "program_name": "Give $20 <get> $20",
        "display_name": "Ana",
        "locale": "en",
        "code": "ABCDEFGHJ",
        "link_url": LINK,
        "qr_svg_url": "https://ref.example.com/qr/ABCDEFGHJ.svg",
        "qr_png_url": "https://ref.example.com/qr/ABCDEFGHJ.png",
        "shares": [
            ShareLink(channel=c, url=f"{LINK}?ch={c}")
            for c in ("email", "whatsapp", "x", "copy", "qr", "sms")
        ],
        "clicks": 1234,
        "unique_clicks": 987,
        "signups": 12,
        "conversions": 3,
        "friends": [
            FriendRow(name="cu•••42", status="converted", at=datetime(2026, 11, 20, tzinfo=UTC)),
            FriendRow(name="cu•••07", status="signed_up", at=datetime(2026, 11, 21, tzinfo=UTC)),
        ],
        "rewards": [RewardSums(unit="USD", pending=2000, available=1000, issued=4000)],
        "next_milestone": NextMilestone(
            threshold=5, converted=3, remaining=2, perk="Founders' edition"
        ),
        "leaderboard": [
            LeaderboardRow(rank=1, name="Bo•••", converted=7, signups=9),
            LeaderboardRow(rank=2, name="Ana", converted=3, signups=12, is_you=True),
        ],
        "embed_origins": ["https://shop.example.com"],
    }
    return Scoreboard(**{**base, **changes})


class FakePool:
    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[object]:
        yield object()


@dataclass
class FakeRuntime:
    settings: LinksSettings
    pool: Any


def make_app(admin_key: str | None = ADMIN_KEY) -> FastAPI:
    app = FastAPI()
    app.include_router(scoreboard_pages.router)
    app.include_router(console_pages.router)
    settings = LinksSettings(
        admin_api_key=SecretStr(admin_key) if admin_key else None,
        public_base_url="https://ref.example.com",
    )
    app.state.runtime = FakeRuntime(settings, FakePool())
    return app


@pytest.fixture
def boards(monkeypatch: pytest.MonkeyPatch) -> dict[str, Scoreboard]:
    known: dict[str, Scoreboard] = {TOKEN: sample_board()}
    asked: list[str] = []

    async def scoreboard(conn: object, token: str, *, base_url: str | None = None) -> Any:
        asked.append(token)
        assert base_url == "https://ref.example.com"
        return known.get(token)

    monkeypatch.setattr(scoreboards, "scoreboard", scoreboard)
    known["_asked"] = asked  # type: ignore[assignment]
    return known


@pytest.fixture
def client(boards: dict[str, Scoreboard]) -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        yield c


class _Tags(HTMLParser):
    """Checks that every non-void element is closed in order (a cheap well-formedness test)."""

    VOID = {"meta", "link", "img", "input", "br", "hr", "source", "col", "area", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def assert_well_formed(html: str) -> None:
    parser = _Tags()
    # Inline SVG closes elements with "/>": HTMLParser reports those as start+end.
    parser.feed(html)
    assert not parser.errors, parser.errors[:3]
    assert parser.stack == [], parser.stack


def _stat(html: str, name: str) -> int:
    match = re.search(rf'data-stat="{name}" data-value="(\d+)"', html)
    assert match, name
    return int(match.group(1))


def test_the_scoreboard_shows_the_participants_numbers(client: TestClient) -> None:
    response = client.get(f"/s/{TOKEN}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert_well_formed(html)
    assert {n: _stat(html, n) for n in ("clicks", "unique_clicks", "signups", "conversions")} == {
        "clicks": 1234,
        "unique_clicks": 987,
        "signups": 12,
        "conversions": 3,
    }
    assert '<span class="value">1,234</span>' in html  # localized number
    assert f'value="{LINK}"' in html  # the link in the copy field
    assert 'src="https://ref.example.com/qr/ABCDEFGHJ.svg"' in html
    # Rewards in their units, from minor units.
    assert 'data-reward="pending" data-value="2000">$20.00<' in html
    assert 'data-reward="available" data-value="1000">$10.00<' in html
    assert 'data-reward="issued" data-value="4000">$40.00<' in html
    # Friends (masked), milestone progress 3/5 = 60%, the leaderboard with "you".
    assert "cu•••42" in html and "Bought" in html and "Signed up" in html
    assert "3 of 5 friends" in html and "2 more friends to go" in html
    assert 'style="width:60%"' in html
    assert "Founders&#39; edition" in html
    assert re.search(r'<tr class="you" aria-current="true">\s*<td class="num">2</td>', html)


def test_the_page_is_phone_friendly_and_safe(client: TestClient) -> None:
    response = client.get(f"/s/{TOKEN}")
    html = response.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<html lang="en" dir="ltr">' in html
    # Escaped program name: no markup from data.
    assert "Give $20 &lt;get&gt; $20" in html and "<get>" not in html
    headers = response.headers
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    # The one inline script carries the nonce the CSP allows; nothing loads from elsewhere.
    nonce = re.search(r"'nonce-([^']+)'", headers["content-security-policy"])
    assert nonce and f'<script nonce="{nonce.group(1)}">' in html
    assert html.count("<script") == 1
    assert not re.search(r'<(link|script)[^>]+(href|src)="https?://', html)


def test_share_buttons_open_each_channel_with_the_tagged_link(client: TestClient) -> None:
    html = client.get(f"/s/{TOKEN}").text
    channels = re.findall(r'data-channel="([a-z]+)"', html)
    assert channels == ["email", "whatsapp", "x", "sms"]  # copy and QR have their own controls
    whatsapp = re.search(r'href="(https://wa.me/[^"]+)"[^>]*data-channel="whatsapp"', html)
    assert whatsapp and "ch%3Dwhatsapp" in whatsapp.group(1)
    assert 'target="_blank" rel="noopener noreferrer"' in html


@pytest.mark.parametrize(
    ("query", "locale", "lang", "direction", "heading"),
    [
        ("", "en", "en", "ltr", "Hi Ana!"),
        ("?lang=ar", "en", "ar", "rtl", "مرحبًا Ana!"),
        ("", "zh-CN", "zh", "ltr", "Ana\uff0c你好\uff01"),
        ("?lang=lv", "ar", "lv", "ltr", "Sveiki, Ana!"),
        ("?lang=de", "lv", "lv", "ltr", "Sveiki, Ana!"),  # unsupported override: own locale
        ("", "fr", "en", "ltr", "Hi Ana!"),  # unsupported locale: English
    ],
)
def test_the_page_follows_the_locale_and_the_override(
    boards: dict[str, Scoreboard],
    client: TestClient,
    query: str,
    locale: str,
    lang: str,
    direction: str,
    heading: str,
) -> None:
    boards[TOKEN] = sample_board(locale=locale)
    response = client.get(f"/s/{TOKEN}{query}")
    assert response.status_code == 200
    assert f'<html lang="{lang}" dir="{direction}">' in response.text
    assert heading in response.text
    assert response.headers["content-language"] == lang


def test_arabic_keeps_links_left_to_right(
    boards: dict[str, Scoreboard], client: TestClient
) -> None:
    html = client.get(f"/s/{TOKEN}?lang=ar").text
    assert re.search(r'<input id="link" class="ltr" dir="ltr"', html)
    assert "تبقّى صديقان" in html  # the Arabic dual for 2 remaining


def test_an_empty_scoreboard_says_so(boards: dict[str, Scoreboard], client: TestClient) -> None:
    boards[TOKEN] = sample_board(
        clicks=0, unique_clicks=0, signups=0, conversions=0, friends=[], rewards=[],
        next_milestone=None, leaderboard=[], display_name=None,
    )  # fmt: skip
    html = client.get(f"/s/{TOKEN}").text
    assert_well_formed(html)
    assert "No friends yet" in html and "No rewards yet." in html
    assert "Your referral scoreboard" in html
    assert "progressbar" not in html


def test_an_unknown_token_is_a_404_page(boards: dict[str, Any], client: TestClient) -> None:
    response = client.get("/s/" + "z" * 43)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text and "Traceback" not in response.text
    arabic = client.get("/s/" + "z" * 43 + "?lang=ar")
    assert arabic.status_code == 404 and 'dir="rtl"' in arabic.text
    # A malformed token is refused before any query.
    asked_before = len(boards["_asked"])
    assert client.get("/s/short").status_code == 404
    assert client.get("/s/has%20space" + "x" * 20).status_code == 404
    assert len(boards["_asked"]) == asked_before


def test_the_embed_may_be_framed_only_by_the_programs_origins(
    boards: dict[str, Scoreboard], client: TestClient
) -> None:
    response = client.get(f"/s/{TOKEN}/embed")
    assert response.status_code == 200
    assert "x-frame-options" not in response.headers
    csp = response.headers["content-security-policy"]
    assert csp.endswith("frame-ancestors https://shop.example.com")
    assert_well_formed(response.text)
    assert _stat(response.text, "clicks") == 1234
    assert f'href="/s/{TOKEN}"' in response.text  # opens the full page

    boards[TOKEN] = sample_board(embed_origins=[])
    csp = client.get(f"/s/{TOKEN}/embed").headers["content-security-policy"]
    assert csp.endswith("frame-ancestors 'none'")


def test_frame_ancestors_lets_only_https_origins_through() -> None:
    assert rendering.frame_ancestors(["https://a.example", "https://b.example:8443/"]) == (
        "https://a.example https://b.example:8443"
    )
    hostile = ["http://plain.example", "https://x.example; script-src *", "*", "'self'"]
    assert rendering.frame_ancestors(hostile) == "'none'"
