"""Webhook fulfilment through the real rewards process: a signed Standard Webhooks call to
the company's endpoint, retried after a failure, issued on 2xx; an endpoint that keeps
failing makes the reward ``failed`` and publishes ``reward.failed``."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
import httpx
from standardwebhooks.webhooks import Webhook

from devstack.journey import Urls
from devstack.stack import Stack, database_url_for
from tests.e2e.test_rewards_scenarios import (
    create_program,
    enrol,
    ledger_unbalanced,
    refer,
    wait_rows,
)


@dataclass
class Receiver:
    """A tiny HTTP endpoint that answers with the next status of ``answers``."""

    answers: list[int]
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/rewards"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.calls.append((headers, body))
        status = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()


@asynccontextmanager
async def receiving(answers: list[int]) -> AsyncIterator[Receiver]:
    receiver = Receiver(answers)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()


async def test_webhook_fulfilment_signed_retried_issued_or_failed(stack: Stack, urls: Urls) -> None:
    async with (
        receiving([500, 204]) as flaky,
        receiving([503]) as down,
        httpx.AsyncClient(timeout=15) as http,
    ):
        programs = []
        for receiver in (flaky, down):
            program = await create_program(
                http,
                urls,
                stack.admin_api_key,
                {
                    "referrer": {"amount": 2000, "unit": "USD"},
                    "fulfilment": {
                        "kind": "webhook",
                        "webhook_url": receiver.url,
                        "max_attempts": 3,
                        "backoff_seconds": 0.3,
                    },
                },
            )
            participant = await enrol(http, program)
            await refer(http, program, participant["code"])
            programs.append((program, participant))

        (ok_program, ok_participant), (down_program, _) = programs
        [issued] = await wait_rows(
            stack, ok_program.id, lambda rows: rows and rows[0]["status"] == "issued"
        )
        [failed] = await wait_rows(
            stack, down_program.id, lambda rows: rows and rows[0]["status"] == "failed"
        )
        secret = (
            await http.get(
                f"{urls.rewards}/v1/programs/{ok_program.id}/webhook-secret",
                headers=ok_program.admin,
            )
        ).json()["webhook_secret"]
        keyless = await http.get(f"{urls.rewards}/v1/programs/{ok_program.id}/webhook-secret")
        assert keyless.status_code == 401

    assert issued["attempts"] == 2 and len(flaky.calls) == 2
    for headers, body in flaky.calls:
        Webhook(secret).verify(body, headers)  # raises if the signature is wrong
        assert headers["webhook-id"] == str(issued["id"])
        data = json.loads(body)["data"]
        assert (data["amount"], data["unit"], data["recipient"]) == (
            2000,
            "USD",
            ok_participant["id"],
        )
    assert failed["attempts"] == 3 and len(down.calls) == 3
    assert failed["failure_reason"] == "webhook: HTTP 503"

    conn = await asyncpg.connect(database_url_for(stack.server_url, "rewards"))
    try:
        topics = await conn.fetch(
            "SELECT topic, payload FROM outbox WHERE topic IN ('reward.issued', 'reward.failed') "
            "AND convert_from(payload, 'UTF8') LIKE '%' || $1 || '%'",
            str(failed["id"]),
        )
        balances = await conn.fetch(
            "SELECT account, -sum(amount) AS b FROM ledger_postings WHERE account LIKE $1 "
            "GROUP BY account",
            f"participant:{uuid.UUID(ok_program.id)}:%",
        )
    finally:
        await conn.close()
    assert [t["topic"] for t in topics] == ["reward.failed"]
    # Paid out through the company's system: nothing left on the internal balance.
    assert [b["b"] for b in balances] == [0]
    assert await ledger_unbalanced(stack) == []
