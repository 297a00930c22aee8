"""Operability through real processes: one trace per referral across the services (exported
over OTLP to a receiver in this test), JSON logs without personal data, readiness that follows
the database and the broker, and a bounded graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from devstack.journey import Urls, eventually, run_journey
from devstack.stack import Stack, StackConfig, database_url_for
from tests.conftest import OUTPUT_DIR
from tests.e2e.otlp_receiver import OtlpReceiver, ReceivedSpan, render_tree

SERVICES = ("links", "attribution", "rewards", "notifications")
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/referral-platform.json"


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def traced(otlp: OtlpReceiver) -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="refplat-ops-"))
    root.chmod(0o755)
    config = StackConfig.for_tests(root)
    config.log_dir = OUTPUT_DIR / "operability-logs"
    shutil.rmtree(config.log_dir, ignore_errors=True)
    config.extra_env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
    )
    stack = Stack(config)
    try:
        asyncio.run(stack.start())
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def _ancestors(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    by_id = {s.span_id: s for s in spans}
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


async def test_one_trace_follows_a_referral_across_the_services(
    traced: Stack, otlp: OtlpReceiver
) -> None:
    urls = Urls.local(traced.config.ports)

    async def rewards_knows(program_id: str) -> None:
        # Else the purchase may wait for the program in rewards and be rewarded while
        # program.published is processed: still in the purchase's trace, but through a span
        # linked to the publication (tests/integration/rewards/test_rewards_waiting_trace.py);
        # this test follows the direct path.
        conn = await asyncpg.connect(database_url_for(traced.server_url, "rewards"))
        try:
            query = "SELECT 1 FROM program_versions WHERE program_id = $1"
            await eventually(lambda: conn.fetchval(query, uuid.UUID(program_id)))
        finally:
            await conn.close()

    journey = await run_journey(
        urls, traced.admin_api_key, log=lambda _: None, program_known=rewards_knows
    )

    # Generous waits: span batches are exported every few seconds, and CI machines are busy.
    [conversion] = await eventually(
        lambda: _async(otlp.find("POST /v1/conversions", "attribution")), timeout_s=60
    )
    trace_id = conversion.trace_id

    def chain_complete() -> list[ReceivedSpan] | None:
        spans = otlp.trace(trace_id)
        names = {(s.service, s.name) for s in spans}
        wanted = {("notifications", "reward.issued process"), ("rewards", "reward.issued publish")}
        return spans if wanted <= names else None

    spans = await eventually(lambda: _async(chain_complete()), timeout_s=60)
    (OUTPUT_DIR / "trace-tree.txt").write_text(render_tree(spans) + "\n")

    def one(service: str, name: str) -> ReceivedSpan:
        found = [s for s in spans if s.service == service and s.name == name]
        assert len(found) == 1, f"{service}: {name} -> {len(found)} spans"
        return found[0]

    converted_pub = one("attribution", "referral.converted publish")
    converted_proc = one("rewards", "referral.converted process")
    issued_pubs = [s for s in spans if s.service == "rewards" and s.name == "reward.issued publish"]
    issued_procs = [
        s for s in spans if s.service == "notifications" and s.name == "reward.issued process"
    ]
    # The relay's publish continues the request that wrote the outbox row...
    assert conversion in _ancestors(converted_pub, spans)
    # ...the consumer's process span is the child of the message's context...
    assert converted_proc.parent_span_id == converted_pub.span_id
    # ...and the next hop continues from inside that processing.
    assert issued_pubs and all(converted_proc in _ancestors(p, spans) for p in issued_pubs)
    assert any(p.parent_span_id in {x.span_id for x in issued_pubs} for p in issued_procs)
    assert {s.service for s in spans} >= {"attribution", "rewards", "notifications"}
    # Database work nests under the consumer span (asyncpg instrumentation).
    assert any(
        s.service == "rewards"
        and converted_proc in _ancestors(s, spans)
        and s.attributes.get("db.system") == "postgresql"
        for s in spans
    )
    # Kafka spans follow the messaging semantic conventions.
    assert converted_proc.attributes["messaging.system"] == "kafka"
    assert converted_proc.attributes["messaging.destination.name"] == "referral.converted"
    assert converted_proc.attributes["messaging.operation.type"] == "process"
    assert journey.rewards["balances"] == {"USD": 2000}


async def _async(value: object) -> object:
    return value


async def test_logs_are_json_lines_without_emails_or_ips(traced: Stack) -> None:
    urls = Urls.local(traced.config.ports)
    email = f"jane.doe+{int(time.time())}@example.org"
    journey = await run_journey(urls, traced.admin_api_key, log=lambda _: None)
    admin = {"Authorization": f"Bearer {traced.admin_api_key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{urls.links}/v1/programs/{journey.program_id}/participants",
            headers=admin,
            json={"external_user_id": "log-check", "email": email, "name": "Jane"},
        )
        assert response.status_code == 201
        await http.get(
            f"{urls.links}/r/{journey.code}", headers={"X-Forwarded-For": "203.0.113.77"}
        )
    await asyncio.sleep(1.0)
    assert traced.config.log_dir is not None
    for service in SERVICES:
        text = (traced.config.log_dir / f"{service}.log").read_text()
        assert email not in text and "203.0.113.77" not in text, service
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        assert records, service
        assert all(r["service"] == service and r["level"] and r["message"] for r in records)


async def test_readiness_follows_the_database_and_the_broker(traced: Stack) -> None:
    urls = Urls.local(traced.config.ports)
    assert traced.postgres is not None and traced.broker is not None
    async with httpx.AsyncClient(timeout=10) as http:

        async def all_ready(expected: int) -> bool:
            codes = [(await http.get(f"{getattr(urls, s)}/readyz")).status_code for s in SERVICES]
            return all(code == expected for code in codes)

        traced.postgres.stop()
        await eventually(lambda: all_ready(503), timeout_s=20)
        body = (await http.get(f"{urls.rewards}/readyz")).json()
        assert body["checks"]["database"].startswith("unreachable")
        assert body["type"].endswith("/not-ready")
        traced.postgres.start()
        await eventually(lambda: all_ready(200), timeout_s=30)

        traced.broker.stop()
        await eventually(lambda: all_ready(503), timeout_s=30)
        traced.broker.start()  # memory-only: it comes back empty
        await eventually(lambda: all_ready(200), timeout_s=60)


async def test_sigterm_stops_a_service_cleanly_and_quickly(traced: Stack) -> None:
    for service in ("rewards", "links"):
        proc = traced.processes[service]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 20)
        elapsed = time.monotonic() - started
        # uvicorn re-raises the signal after its graceful shutdown, so the status is -SIGTERM;
        # what matters is that the lifespan ran to the end (relay, consumer, click flush).
        assert code in (0, -signal.SIGTERM), f"{service} exited with {code}"
        assert elapsed < 15, f"{service} took {elapsed:.1f}s to stop"
        assert traced.config.log_dir is not None
        log = (traced.config.log_dir / f"{service}.log").read_text()
        assert f'"message": "{service} stopped"' in log.splitlines()[-3] + log.splitlines()[-2]
        traced.processes.pop(service)
        traced.start_service(service)
    await traced.wait_ready(services=("rewards", "links"))


async def test_every_metric_on_the_dashboard_is_exported(traced: Stack) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    names = {
        m.removesuffix("_bucket")
        for e in exprs
        for m in re.findall(r"([a-z_]+)(?=[{\[]|\))", e)
        if "_" in m
    }
    names -= {"histogram_quantile", "sum", "rate", "max"}
    urls = Urls.local(traced.config.ports)
    async with httpx.AsyncClient(timeout=10) as http:
        exported = "".join([(await http.get(f"{getattr(urls, s)}/metrics")).text for s in SERVICES])
    missing = sorted(n for n in names if f"# TYPE {n} " not in exported)
    assert not missing, f"dashboard metrics no service exports: {missing}"
