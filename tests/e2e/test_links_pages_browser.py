"""The scoreboard and the ops console in a real browser (Debian's headless Chromium driven by
Playwright), against the four services running as processes: the numbers a person sees are
the ones the JSON API gives, Arabic is laid out right to left, a phone-sized screen needs no
sideways scrolling, the charts are there. Screenshots go to test-output/screenshots/."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from devstack.journey import BROWSER, Urls, eventually, refer_friend
from devstack.stack import Stack
from tests.conftest import OUTPUT_DIR

SCREENSHOTS = OUTPUT_DIR / "screenshots"
# Without the background-networking switches Chromium's own connections get refused here and
# it stalls; none of them is needed to render local pages.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1100, "height": 900}
MILESTONE = 3


def _chromium() -> str:
    """Debian's Chromium (or CHROMIUM_PATH). A required test: missing means FAIL, not skip."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            f"Chromium not found at {path}: the browser tests need it "
            "(apt-get install chromium, or set CHROMIUM_PATH)"
        )
    return path


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), f"{response.request.url}: {response.text}"
    return response.json()


async def _program_with_activity(
    http: httpx.AsyncClient, urls: Urls, admin: dict[str, str]
) -> dict[str, Any]:
    """A program with an experiment and a milestone; Ana brings 3 friends (2 buy) and one
    more click, Bo brings 1 friend who buys, Cy enrols and does nothing."""
    program = _ok(
        await http.post(
            f"{urls.links}/v1/programs",
            headers=admin,
            json={
                "name": "Give $20, get $10",
                "definition": {
                    "destination_url": "https://shop.example.com/welcome",
                    "allowed_hosts": ["shop.example.com"],
                    "links": {"embed_origins": ["https://shop.example.com"]},
                    "rewards": {
                        "referrer": {"amount": 2000, "unit": "USD"},
                        "referee": {"amount": 1000, "unit": "USD"},
                        "milestones": [{"threshold": MILESTONE, "perk": "Founders' edition"}],
                    },
                    "variants": [{"name": "control"}, {"name": "double-sided"}],
                },
            },
        )
    )
    pid = program["id"]
    key = _ok(await http.post(f"{urls.links}/v1/programs/{pid}/keys", headers=admin))
    server = {"Authorization": f"Bearer {key['secret_key']}"}

    async def enrol(name: str, opt_in: bool) -> dict[str, Any]:
        return _ok(  # type: ignore[no-any-return]
            await http.post(
                f"{urls.links}/v1/programs/{pid}/participants",
                headers=server,
                json={
                    "external_user_id": f"{name}-{uuid.uuid4().hex[:8]}",
                    "name": name,
                    "locale": "en",
                    "leaderboard_opt_in": opt_in,
                },
            )
        )

    ana, bo, _cy = await enrol("Ana", True), await enrol("Bo", False), await enrol("Cy", False)
    extra = await http.get(f"{urls.links}/r/{ana['code']}", headers={"User-Agent": BROWSER})
    assert extra.status_code == 302
    # The friends act at the same time (each waits for its own click to reach attribution).
    await asyncio.gather(
        refer_friend(http, urls, server, ana["code"], buy=True, user_agent=f"{BROWSER} friend/1"),
        refer_friend(http, urls, server, ana["code"], buy=True, user_agent=f"{BROWSER} friend/2"),
        refer_friend(http, urls, server, ana["code"], buy=False, user_agent=f"{BROWSER} friend/3"),
        refer_friend(http, urls, server, bo["code"], buy=True, user_agent=f"{BROWSER} friend/4"),
    )
    return {"id": pid, "ana": ana, "bo": bo}


async def test_scoreboard_and_console_in_a_real_browser(stack: Stack, urls: Urls) -> None:
    executable = _chromium()
    try:
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - installed by the test extra
        pytest.fail("playwright is not installed: pip install -e '.[test]'")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    started = time.monotonic()

    def phase(name: str) -> None:  # shown when the test fails, or with -s
        print(f"[pages-browser] {name} at {time.monotonic() - started:.1f}s")

    async with httpx.AsyncClient(timeout=10) as http:
        program = await _program_with_activity(http, urls, admin)
        phase("program, enrolments and referrals made")
        pid, ana = program["id"], program["ana"]
        token = ana["scoreboard_url"].rsplit("/s/", 1)[1]
        scoreboard_url = f"{urls.links}/s/{token}"

        async def settled_board() -> dict[str, Any] | None:
            board = _ok(await http.get(f"{urls.links}/v1/scoreboards/{token}"))
            issued = sum(r["issued"] for r in board["rewards"])
            done = board["signups"] == 3 and board["conversions"] == 2 and board["clicks"] >= 4
            return board if done and issued == 4000 else None

        async def settled_analytics() -> dict[str, Any] | None:
            body = _ok(await http.get(f"{urls.links}/v1/programs/{pid}/analytics", headers=admin))
            funnel = {s["stage"]: s["count"] for s in body["funnel"]}
            wanted = {"enrolled": 3, "clicked": 5, "signed_up": 4, "converted": 3, "rewarded": 3}
            return body if all(funnel.get(k) == v for k, v in wanted.items()) else None

        board = await eventually(settled_board, timeout_s=30)
        phase("scoreboard read model settled")
        analytics = await eventually(settled_analytics, timeout_s=30)
        phase("program analytics settled")
        experiments = _ok(
            await http.get(f"{urls.links}/v1/programs/{pid}/experiments", headers=admin)
        )
        story = _ok(
            await http.get(
                f"{urls.links}/v1/programs/{pid}/participants/{ana['id']}/story", headers=admin
            )
        )
        assert story["complete"] is True, story["parts"]

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        phase("chromium started")
        try:
            # --- the scoreboard, as the participant sees it on a desktop
            context = await browser.new_context(viewport=DESKTOP, locale="en-US")
            page = await context.new_page()
            response = await page.goto(scoreboard_url)
            assert response is not None and response.status == 200
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            for stat in ("clicks", "unique_clicks", "signups", "conversions"):
                cell = page.locator(f'[data-stat="{stat}"]')
                assert await cell.get_attribute("data-value") == str(board[stat]), stat
                shown = await cell.locator(".value").inner_text()
                assert shown.replace(",", "") == str(board[stat]), stat
            [usd] = [r for r in board["rewards"] if r["unit"] == "USD"]
            for state in ("pending", "available", "issued"):
                cell = page.locator(f'tr[data-unit="USD"] [data-reward="{state}"]')
                assert await cell.get_attribute("data-value") == str(usd[state]), state
            issued_text = await page.locator(
                'tr[data-unit="USD"] [data-reward="issued"]'
            ).inner_text()
            assert issued_text == "$40.00"  # 2 referrer rewards of $20
            milestone = page.locator('[data-testid="milestone"]')
            assert await milestone.get_attribute("data-threshold") == str(MILESTONE)
            assert "2 of 3 friends" in await milestone.inner_text()
            assert await page.locator('[data-testid="friends"] tr').count() == len(board["friends"])
            you = page.locator('[data-testid="leaderboard"] tr.you')
            assert "Ana" in await you.inner_text()  # opted in: the name is shown
            assert await page.locator('img[data-testid="qr"]').evaluate(
                "img => img.complete && img.naturalWidth > 0"
            )  # the QR code image loaded
            channels = await page.locator("[data-channel]").evaluate_all(
                "links => links.map(a => a.dataset.channel)"
            )
            assert {"email", "whatsapp"} <= set(channels)
            await page.screenshot(path=str(SCREENSHOTS / "scoreboard-en.png"), full_page=True)
            await context.close()
            phase("desktop scoreboard checked")

            # --- a phone: 375 px wide, nothing wider than the screen; and the copy button
            phone = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
            await phone.grant_permissions(["clipboard-read", "clipboard-write"])
            page = await phone.new_page()
            await page.goto(scoreboard_url)
            widths = await page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1] == PHONE["width"], f"horizontal overflow: {widths}"
            copy = page.locator("button[data-copy]")
            await copy.click()
            await page.wait_for_function(
                "document.querySelector('button[data-copy]').textContent === 'Copied!'"
            )
            assert await page.evaluate("navigator.clipboard.readText()") == ana["link_url"]
            await page.screenshot(
                path=str(SCREENSHOTS / "scoreboard-phone-375.png"), full_page=True
            )

            # --- Arabic, right to left, on the phone
            await page.goto(f"{scoreboard_url}?lang=ar")
            assert await page.evaluate("document.documentElement.dir") == "rtl"
            assert await page.evaluate("document.documentElement.lang") == "ar"
            assert await page.locator("h1").evaluate("h => getComputedStyle(h).direction") == "rtl"
            clicks = page.locator('[data-stat="clicks"]')
            assert await clicks.get_attribute("data-value") == str(board["clicks"])
            widths = await page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1], f"horizontal overflow in Arabic: {widths}"
            await page.screenshot(path=str(SCREENSHOTS / "scoreboard-ar-375.png"), full_page=True)

            # --- the embeddable variant may be framed only by the program's origin
            response = await page.goto(f"{scoreboard_url}/embed")
            assert response is not None and response.status == 200
            csp = response.headers["content-security-policy"]
            assert csp.endswith("frame-ancestors https://shop.example.com")
            await page.screenshot(path=str(SCREENSHOTS / "scoreboard-embed-375.png"))

            # --- an unknown token is a page, not a stack trace
            response = await page.goto(f"{urls.links}/s/{'x' * 43}")
            assert response is not None and response.status == 404
            assert "Page not found" in await page.locator("h1").inner_text()
            await phone.close()
            phase("phone, Arabic, embed and 404 checked")

            # --- the console: the login first, then the overview and the program
            context = await browser.new_context(viewport=DESKTOP)
            page = await context.new_page()
            await page.goto(f"{urls.links}/console/programs/{pid}")
            assert urlsplit(page.url).path == "/console/login"
            await page.fill('input[name="admin_key"]', "not-the-key")
            await page.click('button[type="submit"]')
            assert "That is not the admin key." in await page.content()
            await page.fill('input[name="admin_key"]', stack.admin_api_key)
            await page.click('button[type="submit"]')
            await page.wait_for_url(f"**/console/programs/{pid}")
            cookies = await context.cookies()
            [session] = [c for c in cookies if c["name"] == "console_session"]
            assert session["httpOnly"] and session["sameSite"] == "Strict"

            funnel = {
                stage: int(value)
                for stage, value in await page.locator("[data-stage]").evaluate_all(
                    "rows => rows.map(r => [r.dataset.stage, r.dataset.value])"
                )
            }
            assert funnel == {s["stage"]: s["count"] for s in analytics["funnel"]}
            bars = (
                await page.locator("svg.chart.hbars")
                .first.locator("rect.bar")
                .evaluate_all("bars => bars.map(b => [b.dataset.label, Number(b.dataset.count)])")
            )
            assert [count for _, count in bars] == [s["count"] for s in analytics["funnel"]]
            assert await page.locator("svg.chart.lines").count() >= 2
            points = page.locator("svg.chart.lines").first.locator("circle.point")
            assert await points.count() == 3 * len(analytics["daily"])  # 3 series per day
            k = analytics["k_factor"]["value"]
            assert f"K = {k:.2f}" in await page.locator('[data-testid="k-factor"]').inner_text()
            verdict = await page.locator('[data-testid="verdict"]').inner_text()
            assert verdict == experiments["verdict"]
            assert await page.locator("svg.chart.intervals").count() == 1
            await page.screenshot(path=str(SCREENSHOTS / "console-program.png"), full_page=True)

            async with page.expect_download() as download:
                await page.click('[data-testid="export-referrals"]')
            csv_path = await (await download.value).path()
            assert csv_path is not None
            lines = (await asyncio.to_thread(Path(csv_path).read_text)).splitlines()
            assert len(lines) == 1 + 4  # a header and the program's four referrals

            roi = await page.locator('[data-testid="roi"] tr[data-unit]').evaluate_all(
                "rows => rows.map(r => [r.dataset.unit, Number(r.dataset.revenue),"
                " Number(r.dataset.cost)])"
            )
            assert roi == [[x["unit"], x["revenue"], x["reward_cost"]] for x in analytics["roi"]]

            # The finder, by Ana's code, leads to her support story.
            await page.fill('[data-testid="find-participant"] input[name="q"]', ana["code"])
            await page.click('[data-testid="find-participant"] button[type="submit"]')
            await page.wait_for_url(f"**/console/programs/{pid}/participants/{ana['id']}")
            statuses = await page.locator('[data-testid="signups"] tr[data-status]').evaluate_all(
                "rows => rows.map(r => r.dataset.status)"
            )
            assert sorted(statuses) == sorted(r["status"] for r in story["signups"])
            assert len(statuses) == 3
            assert await page.locator('[data-testid="story-partial"]').count() == 0
            assert await page.locator('[data-testid="timeline"] tr[data-kind]').count() > 5
            await page.screenshot(path=str(SCREENSHOTS / "console-participant.png"), full_page=True)

            await page.goto(f"{urls.links}/console")
            row = page.locator(f'tr[data-program="{pid}"]')
            assert await row.count() == 1
            assert await row.locator("svg.chart.hbars rect.bar").count() == 6
            assert await page.locator('[data-testid="dlq"]').count() == 1
            await page.screenshot(path=str(SCREENSHOTS / "console-overview.png"), full_page=True)
            await context.close()
            phase("console checked")
        finally:
            await browser.close()

    for name in (
        "scoreboard-en.png",
        "scoreboard-phone-375.png",
        "scoreboard-ar-375.png",
        "scoreboard-embed-375.png",
        "console-program.png",
        "console-overview.png",
        "console-participant.png",
    ):
        assert (SCREENSHOTS / name).stat().st_size > 5_000, name
