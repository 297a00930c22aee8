"""The redirect through the raw-ASGI gateway, against the real database and broker."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlsplit

from services.links.gateway.ratelimit import RateLimiter
from shared.contracts import LinkClicked
from tests.integration.kafka_helpers import read_topic
from tests.integration.links.conftest import Links

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


def _query(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


async def _clicks(links: Links, expect: int) -> list[LinkClicked]:
    records = await read_topic(links.settings, LinkClicked.TOPIC, expect=expect)
    return [LinkClicked.model_validate_json(r.value) for r in records]


async def test_a_code_is_looked_up_once_then_answered_from_the_cache(links: Links) -> None:
    program = await links.program()
    code = (await links.enrol(program["id"])).json()["code"]
    first = await links.click(code, headers={"User-Agent": BROWSER})
    assert first.status_code == 302
    for _ in range(5):
        again = await links.click(code, headers={"User-Agent": BROWSER})
        assert again.status_code == 302
    assert links.redirector.misses == 1
    location = first.headers["location"]
    assert location.startswith("https://shop.example.com/welcome?")
    params = _query(location)
    assert params["utm_source"] == ["referral"]
    [click_id] = params["ref_click"]
    assert uuid.UUID(click_id).version == 4
    assert first.headers["cache-control"] == "private, no-store"


async def test_every_redirect_publishes_a_click_with_its_id_as_ce_id(links: Links) -> None:
    program = await links.program()
    participant = (await links.enrol(program["id"])).json()
    ids = []
    for _ in range(3):
        response = await links.click(participant["code"], headers={"User-Agent": BROWSER})
        ids.append(_query(response.headers["location"])["ref_click"][0])
    records = await read_topic(links.settings, LinkClicked.TOPIC, expect=3)
    assert sorted(dict(r.headers)["ce_id"].decode() for r in records) == sorted(ids)
    clicks = [LinkClicked.model_validate_json(r.value) for r in records]
    assert {str(c.click_id) for c in clicks} == set(ids)
    assert {str(c.participant_id) for c in clicks} == {participant["id"]}
    assert all(r.key == participant["code"].encode() for r in records)
    # One visitor, one code, within the hour: one unique click.
    assert sorted(c.unique for c in clicks) == [False, False, True]
    assert all(c.attributable and c.visitor_hash for c in clicks)
    assert "198.51.100.7" not in b"".join(r.value for r in records).decode()


async def test_bots_prefetches_and_head_are_redirected_but_not_attributable(links: Links) -> None:
    program = await links.program()
    code = (await links.enrol(program["id"])).json()["code"]
    cases = [
        ("GET", {"User-Agent": "facebookexternalhit/1.1"}, "bot"),
        ("GET", {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com)"}, "bot"),
        ("GET", {"User-Agent": BROWSER, "Sec-Purpose": "prefetch;prerender"}, "prefetch"),
        ("GET", {"User-Agent": BROWSER, "Purpose": "prefetch"}, "prefetch"),
        ("HEAD", {"User-Agent": BROWSER}, "head"),
        ("GET", {"User-Agent": BROWSER}, None),
    ]
    for method, headers, _ in cases:
        response = await links.http.request(method, f"/r/{code}", headers=headers)
        assert response.status_code == 302
        assert response.content == b""
    clicks = await _clicks(links, len(cases))
    by_reason = sorted((c.non_attributable_reason or "", c.attributable) for c in clicks)
    assert by_reason == sorted((reason or "", reason is None) for _, _, reason in cases)


async def test_share_links_carry_the_channel_and_utm_but_never_the_destination(
    links: Links,
) -> None:
    program = await links.program()
    participant = (await links.enrol(program["id"])).json()
    share = participant["share_links"]["whatsapp"]
    assert share == f"{participant['link_url']}?ch=whatsapp"
    response = await links.click(
        participant["code"],
        params={
            "ch": "whatsapp",
            "utm_campaign": "spring",
            "utm_source": "friend",
            "next": "https://evil.example/",
            "ref_click": "forged",
        },
        headers={"User-Agent": BROWSER},
    )
    location = response.headers["location"]
    assert urlsplit(location).hostname == "shop.example.com"
    params = _query(location)
    assert params["ref_channel"] == ["whatsapp"]
    assert params["utm_campaign"] == ["spring"]
    assert params["utm_source"] == ["friend"]
    assert "next" not in params and params["ref_click"] != ["forged"]
    [click] = await _clicks(links, 1)
    assert click.channel == "whatsapp"


async def test_unknown_codes_get_a_404_page_and_are_remembered_briefly(links: Links) -> None:
    for code in ("NOSUCHCODE", "x" * 65, "bad%20code", "a.b"):
        response = await links.click(code)
        assert response.status_code == 404, code
        assert response.headers["content-type"].startswith("text/html")
    misses = links.redirector.misses
    assert (await links.click("NOSUCHCODE")).status_code == 404
    assert links.redirector.misses == misses


async def test_codes_match_whatever_their_case(links: Links) -> None:
    program = await links.program()
    participant = (await links.enrol(program["id"], code="Spring-Alice")).json()
    response = await links.click("spring-alice", headers={"User-Agent": BROWSER})
    assert response.status_code == 302
    [click] = await _clicks(links, 1)
    assert click.code == "Spring-Alice" and str(click.participant_id) == participant["id"]


async def test_too_many_requests_from_one_address_get_a_429_problem(links: Links) -> None:
    program = await links.program()
    code = (await links.enrol(program["id"])).json()["code"]
    # A bucket of 5 that refills very slowly, so the test does not depend on its speed.
    links.redirector.limiter = RateLimiter(rate_per_s=0.01, burst=5)
    statuses = [(await links.click(code)).status_code for _ in range(8)]
    assert statuses == [302] * 5 + [429] * 3
    limited = await links.click(code)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1
    body = json.loads(limited.content)
    assert body["status"] == 429 and body["type"].endswith("/rate-limited")
