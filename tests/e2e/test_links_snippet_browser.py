"""The browser snippet end to end, in Debian's headless Chromium driven by Playwright: a friend
clicks a real referral link on the gateway, lands on the company's page (served by this test
on localhost, under a strict Content-Security-Policy, loading the snippet cross-origin with its
SRI hash), goes on to the signup form, and the company's backend (also this test) sends the
click id the snippet filled in to attribution: the signup is attributed to the referrer. A typed
code in the URL works the same way without a click, and the welcome page forgets the referral."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from devstack.journey import BROWSER, Urls, eventually
from devstack.stack import Stack
from tests.e2e.test_links_pages_browser import CHROMIUM_ARGS, _chromium, _ok

WINDOW_DAYS = 30


class Shop:
    """The company's site and backend: a landing page, a signup form that the snippet fills,
    and a signup handler that reports the signup to attribution as a company's server would."""

    def __init__(self, urls: Urls, program_key: str, integrity: str) -> None:
        self.urls = urls
        self.key = program_key
        self.integrity = integrity
        self.signups: dict[str, dict[str, Any]] = {}  # customer id -> attribution's answer
        self.port = _free_port()
        self.origin = f"http://localhost:{self.port}"
        self.app = Starlette(
            routes=[
                Route("/landing", self.page("Welcome", '<a id="join" href="/join">Join</a>')),
                Route("/join", self.page("Join", _FORM)),
                Route("/welcome", self.page("Thanks", "<p>Signed up</p>", clear=True)),
                Route("/signup", self.signup, methods=["POST"]),
            ]
        )

    def page(self, title: str, content: str, *, clear: bool = False) -> Any:
        # No inline script anywhere, and only the gateway may serve scripts.
        csp = f"default-src 'none'; script-src {self.urls.links}; form-action 'self'"
        tag = (
            f'<script src="{self.urls.links}/snippet/v1/referral.js" '
            f'integrity="{self.integrity}" crossorigin="anonymous" '
            f'data-days="{WINDOW_DAYS}"{" data-clear" if clear else ""}></script>'
        )
        html = f"<!doctype html><title>{title}</title>{tag}<h1>{title}</h1>{content}"

        async def endpoint(_: Request) -> Response:
            return HTMLResponse(html, headers={"Content-Security-Policy": csp})

        return endpoint

    async def signup(self, request: Request) -> Response:
        # A urlencoded form, read without the multipart parser Starlette's form() needs.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        body: dict[str, Any] = {"customer_id": form["customer_id"]}
        if form.get("referral_click_id"):
            body["click_id"] = form["referral_click_id"]
        if form.get("referral_code"):
            body["referral_code"] = form["referral_code"]
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(
                f"{self.urls.attribution}/v1/signups",
                headers={"Authorization": f"Bearer {self.key}"},
                json=body,
            )
        self.signups[body["customer_id"]] = {"sent": body, "answer": _ok(answer)}
        return RedirectResponse("/welcome", status_code=303)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Shop]:
        server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        task = asyncio.create_task(server.serve())
        deadline = time.monotonic() + 10
        while not server.started:
            assert not task.done(), "the shop's server did not start"
            assert time.monotonic() < deadline, "the shop's server did not start in 10 s"
            await asyncio.sleep(0.02)
        try:
            yield self
        finally:
            server.should_exit = True
            await task


_FORM = (
    '<form data-referral method="post" action="/signup">'
    '<input name="customer_id" id="customer"><button id="submit">Sign up</button></form>'
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _decided(http: httpx.AsyncClient, urls: Urls, key: str, signup_id: str) -> Any:
    async def probe() -> dict[str, Any] | None:
        response = await http.get(
            f"{urls.attribution}/v1/signups/{signup_id}",
            headers={"Authorization": f"Bearer {key}"},
        )
        body = _ok(response)
        return body if body["status"] != "pending" else None

    return await eventually(probe, timeout_s=30)


async def test_a_signup_through_the_snippet_is_attributed(stack: Stack, urls: Urls) -> None:
    executable = _chromium()
    from playwright.async_api import async_playwright

    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    started = time.monotonic()

    def phase(name: str) -> None:  # shown when the test fails, or with -s
        print(f"[snippet-browser] {name} at {time.monotonic() - started:.1f}s")

    async with httpx.AsyncClient(timeout=10) as http:
        integrity = _ok(await http.get(f"{urls.links}/snippet/v1/integrity"))["integrity"]
        shop = Shop(urls, "", integrity)
        program = _ok(
            await http.post(
                f"{urls.links}/v1/programs",
                headers=admin,
                json={
                    "name": "Snippet",
                    "definition": {
                        "destination_url": f"{shop.origin}/landing?plan=pro",
                        "allowed_hosts": ["localhost"],
                        "attribution": {"window_days": WINDOW_DAYS},
                    },
                },
            )
        )
        pid = program["id"]
        shop.key = _ok(await http.post(f"{urls.links}/v1/programs/{pid}/keys", headers=admin))[
            "secret_key"
        ]
        server = {"Authorization": f"Bearer {shop.key}"}

        async def enrol(name: str) -> dict[str, Any]:
            return _ok(  # type: ignore[no-any-return]
                await http.post(
                    f"{urls.links}/v1/programs/{pid}/participants",
                    headers=server,
                    json={"external_user_id": f"{name}-{uuid.uuid4().hex[:8]}"},
                )
            )

        ana, bo = await enrol("ana"), await enrol("bo")
        phase("program and participants")
        problems: list[str] = []
        async with shop.serving(), async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(user_agent=BROWSER)
                page = await context.new_page()
                phase("browser started")
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on(
                    "console",
                    lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
                )

                # A real referral link: the gateway redirects to the landing page with the click.
                await page.goto(f"{urls.links}/r/{ana['code']}")
                phase("landed")
                landed = urlsplit(page.url)
                assert (landed.netloc, landed.path) == (f"localhost:{shop.port}", "/landing")
                query = parse_qs(landed.query)
                assert query["plan"] == ["pro"]
                click_id = query["ref_click"][0]
                kept = await page.evaluate("window.Referral.get()")
                assert kept == {"clickId": click_id, "code": None}
                (cookie,) = [c for c in await context.cookies() if c["name"] == "referral"]
                assert cookie["sameSite"] == "Lax" and cookie["domain"] == "localhost"
                assert not cookie["secure"]  # http here; the snippet sets Secure on https
                left_days = (cookie["expires"] - time.time()) / 86400
                assert WINDOW_DAYS - 0.1 < left_days <= WINDOW_DAYS, left_days

                # On to the form (a page without the parameters): the cookie carries the click.
                phase("cookie checked")
                await page.click("#join")
                await page.wait_for_url(f"{shop.origin}/join")
                filled = await page.input_value('input[name="referral_click_id"]')
                assert filled == click_id
                phase("form filled by the snippet")
                friend = f"friend-{uuid.uuid4().hex[:8]}"
                await page.fill("#customer", friend)
                await page.click("#submit")
                await page.wait_for_url(f"{shop.origin}/welcome")
                assert shop.signups[friend]["sent"] == {"customer_id": friend, "click_id": click_id}
                assert not [c for c in await context.cookies() if c["name"] == "referral"], (
                    "the welcome page (data-clear) forgets the referral"
                )
                assert await page.evaluate("window.Referral.get()") is None

                phase("signed up with the click")
                # A cookie the snippet did not write (junk) is ignored, not an error.
                await context.add_cookies(
                    [{"name": "referral", "value": "%E0%zz&c=x", "url": shop.origin}]
                )
                await page.goto(f"{shop.origin}/landing")
                assert await page.evaluate("window.Referral.get()") is None

                # A typed code in the URL, without a click (e.g. a code read out loud).
                await page.goto(f"{shop.origin}/join?ref={bo['code']}")
                assert await page.input_value('input[name="referral_code"]') == bo["code"]
                # No click kept (the welcome page cleared it): no click input is added.
                assert await page.locator('input[name="referral_click_id"]').count() == 0
                other = f"friend-{uuid.uuid4().hex[:8]}"
                await page.fill("#customer", other)
                await page.click("#submit")
                await page.wait_for_url(f"{shop.origin}/welcome")
                sent = shop.signups[other]["sent"]
                assert sent == {"customer_id": other, "referral_code": bo["code"]}
                phase("signed up with the code")
            finally:
                await browser.close()

        assert not problems, problems  # no CSP violation, no SRI failure, no script error
        by_click = await _decided(http, urls, shop.key, shop.signups[friend]["answer"]["signup_id"])
        assert by_click["attributed"] and by_click["status"] == "active", by_click
        assert by_click["referrer_id"] == ana["id"]
        phase("click signup decided")
        by_code = await _decided(http, urls, shop.key, shop.signups[other]["answer"]["signup_id"])
        assert by_code["attributed"] and by_code["referrer_id"] == bo["id"], by_code
    phase("code signup decided")
