"""The ops console: the admin-key login and its signed cookie, the overview and program
pages rendered from model instances (queries replaced; no database or broker), CSV export."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.links.insights import console as console_overview_module
from services.links.insights import dlq, exports, reports, stats
from services.links.insights.models import (
    ConsoleOverview,
    DailyPoint,
    ExperimentReport,
    FunnelStage,
    NpsPoint,
    NpsReport,
    ProgramAnalytics,
    ProgramSummary,
    RewardIssue,
    VariantStats,
)
from services.links.programs import repository
from services.links.web import console_auth, console_charts
from tests.unit.test_links_web_scoreboard import ADMIN_KEY, assert_well_formed, make_app

PROGRAM = uuid.UUID(int=7)
STAGES = ("enrolled", "shared", "clicked", "signed_up", "converted", "rewarded")
FUNNEL = [
    FunnelStage(stage=s, count=c) for s, c in zip(STAGES, (40, 30, 120, 24, 12, 10), strict=True)
]  # type: ignore[arg-type]


def _analytics(since: date, until: date) -> ProgramAnalytics:
    days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    return ProgramAnalytics(
        program_id=PROGRAM,
        since=since,
        until=until,
        funnel=FUNNEL,
        rejections_by_reason={"self_referral": 4, "disposable_email": 2},
        flagged=3,
        daily=[
            DailyPoint(day=d, clicks=i * 2, signups=i, conversions=i // 2)
            for i, d in enumerate(days)
        ],
        reward_cost={"USD": 24000},
        cost_per_acquired_customer={"USD": 2000.0},
        k_factor=stats.k_factor(40, 120, 12),
    )


def _experiments() -> ExperimentReport:
    variants = []
    for name, n, converters in (("A", 1000, 100), ("B", 1000, 130)):
        low, high = stats.wilson_interval(converters, n)  # type: ignore[misc]
        variants.append(
            VariantStats(
                variant=name, participants=n, sharers=n // 2, clicks=n * 3, signups=n // 4,
                conversions=converters, participant_conversion_rate=converters / n, ci_low=low,
                ci_high=high, click_conversion_rate=converters / (n * 3),
                reward_cost_per_conversion={"USD": 2000.0},
                k_factor=stats.k_factor(n, n * 3, converters),
            )
        )  # fmt: skip
    verdict = stats.experiment_verdict([stats.Arm("A", 100, 1000), stats.Arm("B", 130, 1000)])
    return ExperimentReport(
        program_id=PROGRAM, version=None, variants=variants, verdict=verdict.sentence,
        p_value=verdict.p_value, best=verdict.best,
    )  # fmt: skip


def _nps(since: date) -> NpsReport:
    return NpsReport(
        program_id=PROGRAM, responses=5, promoters=4, passives=1, detractors=0, nps=80.0,
        daily=[
            NpsPoint(day=since, responses=5, nps=80.0),
            NpsPoint(day=since + timedelta(days=1), responses=0, nps=None),
        ],
    )  # fmt: skip


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def get_program(conn: object, program_id: uuid.UUID) -> Any:
        return {"name": "Spring <promo>", "status": "active"} if program_id == PROGRAM else None

    async def program_analytics(
        conn: object, program_id: uuid.UUID, since: date, until: date
    ) -> Any:
        seen["range"] = (since, until)
        return _analytics(since, until)

    async def nps_report(conn: object, program_id: uuid.UUID, since: date, until: date) -> Any:
        return _nps(since)

    async def experiment_report(conn: object, program_id: uuid.UUID, version: Any = None) -> Any:
        return _experiments()

    async def console_overview(conn: object, dlq_sizes: dict[str, int]) -> Any:
        now = datetime(2026, 11, 22, 12, tzinfo=UTC)
        issue = RewardIssue(
            reward_id=uuid.UUID(int=9), program_id=PROGRAM, referrer_id=uuid.UUID(int=3),
            amount=2000, unit="USD", reason="webhook answered 500", since=now,
        )  # fmt: skip
        return ConsoleOverview(
            programs=[
                ProgramSummary(
                    program_id=PROGRAM, name="Spring <promo>", status="active",
                    participants=40, conversions=12, funnel=FUNNEL,
                )
            ],
            failed_rewards=[issue],
            stuck_rewards=[],
            dlq=dlq_sizes,
        )  # fmt: skip

    async def dlq_sizes(settings: object) -> dict[str, int]:
        return {"referral.converted.dlq": 2, "link.clicked.dlq": 0}

    async def export(conn: object, kind: str, program_id: uuid.UUID) -> AsyncIterator[str]:
        assert kind == "referrals"
        yield "referral_id,status\r\n"
        yield "r-1,converted\r\n"

    monkeypatch.setattr(repository, "get_program", get_program)
    monkeypatch.setattr(reports, "program_analytics", program_analytics)
    monkeypatch.setattr(reports, "nps_report", nps_report)
    monkeypatch.setattr(reports, "experiment_report", experiment_report)
    monkeypatch.setattr(console_overview_module, "console_overview", console_overview)
    monkeypatch.setattr(exports, "export_csv", export)
    monkeypatch.setattr(dlq, "dlq_sizes", dlq_sizes)
    return seen


@pytest.fixture
def client(console: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        yield c


def _login(client: TestClient, key: str = ADMIN_KEY, next_: str = "/console") -> Any:
    return client.post(
        "/console/login", data={"admin_key": key, "next": next_}, follow_redirects=False
    )


def test_the_console_sends_strangers_to_the_login(client: TestClient) -> None:
    for path in (
        "/console",
        f"/console/programs/{PROGRAM}",
        f"/console/programs/{PROGRAM}/export/referrals.csv",
    ):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/login?next=%2Fconsole")
    form = client.get("/console/login")
    assert form.status_code == 200 and 'type="password" name="admin_key"' in form.text
    assert form.headers["x-frame-options"] == "DENY"


def test_a_wrong_key_is_refused(client: TestClient) -> None:
    response = _login(client, key="not-the-key")
    assert response.status_code == 401
    assert "That is not the admin key." in response.text
    assert "set-cookie" not in response.headers
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_the_admin_key_opens_a_signed_strict_http_only_session(client: TestClient) -> None:
    response = _login(client, next_=f"/console/programs/{PROGRAM}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/programs/{PROGRAM}"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{console_auth.COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/console", "Max-Age=28800"):
        assert attribute.lower() in cookie.lower(), attribute
    assert ADMIN_KEY not in cookie
    assert client.get("/console").status_code == 200
    # Signed in, the login page sends you on.
    again = client.get("/console/login?next=/console", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/console"


def test_a_login_never_redirects_off_the_console(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/console", "/console/\\evil", "/other"):
        assert _login(client, next_=target).headers["location"] == "/console"


def test_a_tampered_or_expired_cookie_is_not_a_session() -> None:
    now = 1_800_000_000.0
    cookie = console_auth.issue(ADMIN_KEY, now=now)
    assert console_auth.valid(cookie, ADMIN_KEY, now=now + 60)
    assert not console_auth.valid(cookie, ADMIN_KEY, now=now + console_auth.LIFETIME_S + 1)
    expires, nonce, signature = cookie.split(".")
    extended = f"{int(expires) + 86400}.{nonce}.{signature}"
    assert not console_auth.valid(extended, ADMIN_KEY, now=now)
    assert not console_auth.valid(cookie, "another-admin-key", now=now)  # key rotated
    assert not console_auth.valid("garbage", ADMIN_KEY, now=now)
    assert not console_auth.valid(cookie, None, now=now)


def test_without_an_admin_key_the_console_stays_closed(console: dict[str, Any]) -> None:
    with TestClient(make_app(admin_key=None)) as client:
        response = _login(client, key="")
        assert response.status_code == 401
        assert "no ADMIN_API_KEY" in response.text


def test_the_overview_lists_programs_failed_rewards_and_dlqs(client: TestClient) -> None:
    _login(client)
    response = client.get("/console")
    html = response.text
    assert_well_formed(html)
    assert "Spring &lt;promo&gt;" in html
    assert f'href="/console/programs/{PROGRAM}"' in html
    assert len(re.findall(r'<svg[^>]+class="chart hbars"', html)) == 1
    assert "webhook answered 500" in html and "$20.00" in html
    assert re.search(r'data-topic="referral.converted.dlq">.*?<td class="num warn">2</td>', html)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_program_page_shows_funnel_charts_k_nps_and_the_experiment(
    client: TestClient, console: dict[str, Any]
) -> None:
    _login(client)
    response = client.get(f"/console/programs/{PROGRAM}?since=2026-11-01&until=2026-11-10")
    assert response.status_code == 200
    html = response.text
    assert_well_formed(html)
    assert console["range"] == (date(2026, 11, 1), date(2026, 11, 10))
    funnel = dict(re.findall(r'data-stage="([a-z_]+)" data-value="(\d+)"', html))
    assert funnel == {s: str(f.count) for s, f in zip(STAGES, FUNNEL, strict=True)}
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    for svg in svgs:
        ET.fromstring(svg)  # each chart is well-formed XML
    kinds = [re.search(r'class="chart (\w+)"', s).group(1) for s in svgs]  # type: ignore[union-attr]
    assert kinds == ["hbars", "hbars", "lines", "lines", "lines", "intervals"]
    assert "self_referral" in html and 'data-testid="flagged">3<' in html
    assert "K = 0.30" in html  # 12 conversions / 40 participants
    assert "invites per participant" in html  # the definition next to the number
    assert "variant B converts better (p = 0.035)" in html
    assert '10.0%<br><span class="muted">8.3%\u201312.0%</span>' in html  # Wilson 95%
    assert '<p class="big">80</p>' in html
    assert f'href="/console/programs/{PROGRAM}/export/referrals.csv"' in html
    assert f'href="/console/programs/{PROGRAM}/export/rewards.csv"' in html
    assert "$240.00" in html  # reward cost 24000 cents


def test_the_program_page_defaults_to_the_last_30_days(
    client: TestClient, console: dict[str, Any]
) -> None:
    _login(client)
    client.get(f"/console/programs/{PROGRAM}")
    since, until = console["range"]
    assert until == datetime.now(UTC).date() and (until - since).days == 29
    client.get(f"/console/programs/{PROGRAM}?since=2020-01-01&until=2026-01-01")
    since, until = console["range"]
    assert (until, (until - since).days) == (date(2026, 1, 1), 730)  # capped like the API


def test_an_unknown_program_is_a_404_page(client: TestClient) -> None:
    _login(client)
    response = client.get(f"/console/programs/{uuid.UUID(int=99)}")
    assert response.status_code == 404 and "No such program" in response.text
    bad = client.get("/console/programs/not-a-uuid")
    assert bad.status_code == 422


def test_csv_export_streams_the_rows(client: TestClient) -> None:
    _login(client)
    response = client.get(f"/console/programs/{PROGRAM}/export/referrals.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    assert response.text == "referral_id,status\r\nr-1,converted\r\n"
    assert client.get(f"/console/programs/{PROGRAM}/export/secrets.csv").status_code == 404


def test_logging_out_ends_the_session(client: TestClient) -> None:
    _login(client)
    response = client.post("/console/logout", follow_redirects=False)
    assert response.status_code == 303
    assert (
        "max-age=0" in response.headers["set-cookie"].lower()
        or "expires" in response.headers["set-cookie"].lower()
    )
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_funnel_rates_only_between_stages_counted_in_referrals() -> None:
    analytics = _analytics(date(2026, 11, 1), date(2026, 11, 2))
    # clicked 120 -> signed up 24 (20%) -> converted 12 (50%) -> rewarded 10 (83%).
    assert console_charts.funnel_notes(analytics) == [
        None,
        None,
        None,
        "20% of clicked",
        "50% of signed up",
        "83% of converted",
    ]


def test_the_overview_still_answers_when_the_broker_does_not(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(settings: object) -> dict[str, int]:
        raise ConnectionError("broker down")

    monkeypatch.setattr(dlq, "dlq_sizes", unreachable)
    _login(client)
    response = client.get("/console")
    assert response.status_code == 200
    assert "Broker not reachable: ConnectionError" in response.text
    assert "Spring &lt;promo&gt;" in response.text
