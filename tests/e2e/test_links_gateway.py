"""The links gateway as a real process (uvicorn serving the raw-ASGI redirect in front of
FastAPI), with attribution reading its clicks from the real broker."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from devstack.journey import Urls, eventually
from devstack.stack import Stack

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


async def _program(http: httpx.AsyncClient, urls: Urls, admin: dict[str, str], **extra: Any) -> Any:
    definition = {
        "destination_url": "https://shop.example.com/welcome",
        "allowed_hosts": ["shop.example.com"],
        **extra,
    }
    response = await http.post(
        f"{urls.links}/v1/programs", headers=admin, json={"name": "gw", "definition": definition}
    )
    assert response.status_code == 201, response.text
    program = response.json()
    key = (await http.post(f"{urls.links}/v1/programs/{program['id']}/keys", headers=admin)).json()
    return program, {"Authorization": f"Bearer {key['secret_key']}"}


async def _enrol(http: httpx.AsyncClient, urls: Urls, program_id: str, key: dict[str, str]) -> Any:
    response = await http.post(
        f"{urls.links}/v1/programs/{program_id}/participants",
        headers=key,
        json={"external_user_id": f"u-{uuid.uuid4().hex[:8]}"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _click_id(response: httpx.Response) -> str:
    return parse_qs(urlsplit(response.headers["location"]).query)["ref_click"][0]


async def test_bot_clicks_reach_attribution_as_not_attributable(stack: Stack, urls: Urls) -> None:
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        program, key = await _program(http, urls, admin)
        participant = await _enrol(http, urls, program["id"], key)
        link = f"{urls.links}/r/{participant['code']}"
        person = await http.get(
            link, headers={"User-Agent": BROWSER, "X-Forwarded-For": "198.51.100.1"}
        )
        bot = await http.get(
            link, headers={"User-Agent": "Twitterbot/1.0", "X-Forwarded-For": "198.51.100.2"}
        )
        head = await http.head(link, headers={"User-Agent": BROWSER})
        assert {person.status_code, bot.status_code, head.status_code} == {302}
        assert head.content == b""

        async def seen(click_id: str) -> Any:
            response = await http.get(f"{urls.attribution}/v1/clicks/{click_id}", headers=key)
            return response.json() if response.status_code == 200 else None

        assert (await eventually(lambda: seen(_click_id(person))))["attributable"] is True
        assert (await eventually(lambda: seen(_click_id(bot))))["attributable"] is False
        assert (await eventually(lambda: seen(_click_id(head))))["attributable"] is False

        metrics = (await http.get(f"{urls.links}/metrics")).text
        assert 'redirects_total{status="302"}' in metrics
        for name in ("clicks_published_total", "clicks_spilled_total", "clicks_replayed_total",
                     "clicks_dropped_total", "clicks_buffered"):  # fmt: skip
            assert name in metrics


async def test_pause_erasure_and_rate_limit_through_the_real_server(
    stack: Stack, urls: Urls
) -> None:
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        program, key = await _program(http, urls, admin)
        participant = await _enrol(http, urls, program["id"], key)
        link = f"{urls.links}/r/{participant['code']}"
        assert (await http.get(link, headers={"User-Agent": BROWSER})).status_code == 302
        # Paused without a fallback URL: a plain 404 page.
        await http.post(f"{urls.links}/v1/programs/{program['id']}/pause", headers=admin)
        assert (await http.get(link)).status_code == 404
        await http.post(f"{urls.links}/v1/programs/{program['id']}/resume", headers=admin)
        assert (await http.get(link)).status_code == 302
        erase = await http.delete(
            f"{urls.links}/v1/programs/{program['id']}/participants/{participant['id']}",
            headers=admin,
        )
        assert erase.status_code == 200
        assert (await http.get(link)).status_code == 404

        other = await _enrol(http, urls, program["id"], key)
        # Faster than the refill (20/s per address): the burst of 100 runs out.
        limited = []
        for _ in range(2000):
            response = await http.get(
                f"{urls.links}/r/{other['code']}", headers={"X-Forwarded-For": "192.0.2.77"}
            )
            if response.status_code == 429:
                limited.append(response)
                break
        assert limited, "requests faster than the refill rate must hit the limit"
        assert limited[0].headers["content-type"] == "application/problem+json"
        assert int(limited[0].headers["retry-after"]) >= 1
        # Other addresses are not affected.
        assert (
            await http.get(
                f"{urls.links}/r/{other['code']}", headers={"X-Forwarded-For": "192.0.2.78"}
            )
        ).status_code == 302
