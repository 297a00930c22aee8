"""One referral through the four services over HTTP, as a client app would drive it.
``python -m devstack.journey`` runs it against ``make dev``; the e2e tests reuse it."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from devstack.stack import DEFAULT_PORTS

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"


@dataclass
class Urls:
    links: str
    attribution: str
    rewards: str
    notifications: str

    @classmethod
    def local(cls, ports: dict[str, int] | None = None) -> Urls:
        p = ports or DEFAULT_PORTS
        return cls(**{s: f"http://127.0.0.1:{port}" for s, port in p.items()})


@dataclass
class Journey:
    program_id: str
    program_key: str
    participant_id: str
    code: str
    click_id: str
    customer_id: str
    order_id: str
    rewards: dict[str, Any]
    feed: dict[str, Any]


async def eventually(probe: Callable[[], Awaitable[Any]], timeout_s: float = 60.0) -> Any:
    """Poll ``probe`` until it returns something truthy (events take a moment to flow; on a
    busy machine, a consumer's first group join alone can take several seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.05)


async def settle(
    probe: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], timeout_s: float = 40.0
) -> Any:
    """Poll ``probe`` until ``done(value)`` holds; the last value either way, so the caller's
    assertion shows what was there instead of a bare timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


def _ok(response: httpx.Response, *codes: int) -> dict[str, Any]:
    if response.status_code not in (codes or (200, 201)):
        raise RuntimeError(
            f"{response.request.method} {response.request.url} -> "
            f"{response.status_code}: {response.text}"
        )
    return response.json()  # type: ignore[no-any-return]


async def run_journey(
    urls: Urls,
    admin_key: str,
    *,
    log: Callable[[str], None] = print,
    referrer_reward: int = 2000,
    referee_reward: int = 2000,
    program_known: Callable[[str], Awaitable[None]] | None = None,
) -> Journey:
    """``program_known``: awaited with the program id before the friend buys, for callers that
    need every service to hold the program first (a purchase that reaches rewards before the
    program waits for it, and is rewarded in the program's trace rather than the purchase's)."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(timeout=10.0) as http:
        program = _ok(
            await http.post(
                f"{urls.links}/v1/programs",
                headers=admin,
                json={
                    "name": "Give $20, get $20",
                    "definition": {
                        "destination_url": "https://shop.example.com/welcome",
                        "allowed_hosts": ["shop.example.com"],
                        "rewards": {
                            "referrer": {"amount": referrer_reward, "unit": "USD"},
                            "referee": {"amount": referee_reward, "unit": "USD"},
                        },
                    },
                },
            )
        )
        pid = program["id"]
        log(f"program {pid} version {program['version']}")
        key = _ok(await http.post(f"{urls.links}/v1/programs/{pid}/keys", headers=admin))
        server = {"Authorization": f"Bearer {key['secret_key']}"}
        log(f"program key {key['key_id']} issued (secret shown once)")

        participant = _ok(
            await http.post(
                f"{urls.links}/v1/programs/{pid}/participants",
                headers=server,
                json={"external_user_id": f"user-{uuid.uuid4().hex[:8]}", "locale": "en"},
            )
        )
        log(
            f"participant {participant['id']} code {participant['code']} "
            f"link {participant['link_url']}"
        )

        redirect = await http.get(
            participant["link_url"].replace(participant["link_url"].split("/r/")[0], urls.links),
            headers={"User-Agent": BROWSER},  # the friend's browser: bots are not attributed
        )
        if redirect.status_code != 302:
            raise RuntimeError(f"redirect answered {redirect.status_code}")
        location = redirect.headers["location"]
        click_id = parse_qs(urlsplit(location).query)["ref_click"][0]
        log(f"GET /r/{participant['code']} -> 302 {location}")

        # The click reaches attribution through link.clicked.
        await eventually(
            lambda: _status(http, f"{urls.attribution}/v1/clicks/{click_id}", server, 200)
        )
        customer_id = f"cust-{uuid.uuid4().hex[:8]}"
        signup = _ok(
            await http.post(
                f"{urls.attribution}/v1/signups",
                headers=server,
                json={"customer_id": customer_id, "click_id": click_id},
            )
        )
        log(f"signup {customer_id}: attributed={signup['attributed']} ({signup['reason']})")
        if program_known is not None:
            await program_known(pid)
        order_id = f"order-{uuid.uuid4().hex[:8]}"
        conversion = _ok(
            await http.post(
                f"{urls.attribution}/v1/conversions",
                headers={**server, "Idempotency-Key": order_id},
                json={
                    "customer_id": customer_id,
                    "order_id": order_id,
                    "amount": 4999,
                    "currency": "USD",
                },
            )
        )
        log(
            f"conversion {conversion['conversion_id']} (program version "
            f"{conversion['program_version']})"
        )

        ppath = f"/v1/programs/{pid}/participants/{participant['id']}"
        rewards = await eventually(
            lambda: _json_if(http, f"{urls.rewards}{ppath}/rewards", server, lambda b: b["rewards"])
        )
        log(f"rewards: balance {rewards['balances']}")
        feed = await eventually(
            lambda: _json_if(
                http,
                f"{urls.notifications}{ppath}/notifications",
                server,
                lambda b: any(i["kind"] == "reward_issued" for i in b["items"]),
            )
        )
        log(f"notifications: {[i['title'] for i in feed['items']]}")
        token = participant["scoreboard_url"].rsplit("/", 1)[-1]
        board = await eventually(
            lambda: _json_if(
                http, f"{urls.links}/v1/scoreboards/{token}", {}, lambda b: b["conversions"] >= 1
            )
        )
        log(
            f"scoreboard: {participant['scoreboard_url']} (clicks {board['clicks']}, "
            f"signups {board['signups']}, conversions {board['conversions']})"
        )
        log(f"ops console: {urls.links}/console (sign in with the admin key)")
        return Journey(
            pid,
            key["secret_key"],
            participant["id"],
            participant["code"],
            click_id,
            customer_id,
            order_id,
            rewards,
            feed,
        )


async def refer_friend(
    http: httpx.AsyncClient,
    urls: Urls,
    server: dict[str, str],
    code: str,
    *,
    buy: bool,
    user_agent: str = BROWSER,
    amount: int = 4999,
    currency: str = "USD",
) -> str:
    """A friend follows a referral link, signs up with the click and, if ``buy``, makes a
    first purchase (``server``: the program key's headers). Returns the friend's customer id."""
    redirect = await http.get(f"{urls.links}/r/{code}", headers={"User-Agent": user_agent})
    if redirect.status_code != 302:
        raise RuntimeError(f"GET /r/{code} -> {redirect.status_code}")
    click_id = parse_qs(urlsplit(redirect.headers["location"]).query)["ref_click"][0]
    await eventually(lambda: _status(http, f"{urls.attribution}/v1/clicks/{click_id}", server, 200))
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    _ok(
        await http.post(
            f"{urls.attribution}/v1/signups",
            headers=server,
            json={"customer_id": customer, "click_id": click_id},
        )
    )
    if buy:
        _ok(
            await http.post(
                f"{urls.attribution}/v1/conversions",
                headers=server,
                json={
                    "customer_id": customer,
                    "order_id": f"o-{uuid.uuid4().hex[:8]}",
                    "amount": amount,
                    "currency": currency,
                },
            )
        )
    return customer


async def _status(http: httpx.AsyncClient, url: str, headers: dict[str, str], code: int) -> bool:
    return (await http.get(url, headers=headers)).status_code == code


async def _json_if(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    test: Callable[[dict[str, Any]], Any],
) -> dict[str, Any] | None:
    response = await http.get(url, headers=headers)
    if response.status_code == 200 and test(body := response.json()):
        return body  # type: ignore[no-any-return]
    return None


def main() -> None:
    key = os.environ.get("ADMIN_API_KEY") or (Path(".dev") / "admin_api_key").read_text().strip()
    started = time.perf_counter()
    ports = {s: int(os.environ.get(f"{s.upper()}_PORT", p)) for s, p in DEFAULT_PORTS.items()}
    asyncio.run(run_journey(Urls.local(ports), key))
    print(f"journey complete in {time.perf_counter() - started:.2f}s")


if __name__ == "__main__":
    main()
