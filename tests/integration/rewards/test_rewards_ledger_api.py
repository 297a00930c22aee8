"""The ledger as finance reads it, through the rewards app in-process (its real lifespan) over
a fresh database and broker: statements that add up to the balances, cursor pages that never
repeat or skip a line while entries are written, CSV, manual adjustments, both sides of a
participant, reversal kinds and the return on rewards."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.journey import eventually
from services.rewards import consumers, ledger
from services.rewards.ledger import statement as ledger_statement
from shared.contracts import ParticipantEnrolled, ProgramPublished
from shared.contracts.programs import ProgramDefinition
from shared.http.auth import new_program_key, store_key
from tests.integration.rewards.conftest import ADMIN, Client
from tests.integration.rewards.test_rewards_flow import (
    T0,
    apply,
    assert_ledger_balanced,
    conversion,
    convert,
    publish,
    reversal,
)


async def enrol(pool: asyncpg.Pool, program_id: uuid.UUID, external_user_id: str) -> uuid.UUID:
    participant_id = uuid.uuid4()
    event = ParticipantEnrolled(
        participant_id=participant_id,
        program_id=program_id,
        external_user_id=external_user_id,
        code="ABCDEFGH23",
        link_url="https://ref.example.com/r/x",
        enrolled_at=datetime.now(UTC),
    )
    await apply(pool, consumers.on_participant_enrolled, event)
    return participant_id


def ok(response: httpx.Response, *codes: int) -> Any:
    assert response.status_code in (codes or (200,)), response.text
    return response.json()


async def read_on(
    client: httpx.AsyncClient, path: str, cursor: str | None, limit: int = 2
) -> tuple[list[dict], str | None]:
    """Every line after ``cursor`` there is now, and the cursor to read on from later."""
    lines: list[dict] = []
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        page = ok(await client.get(path, params=params, headers=ADMIN))
        lines += page["lines"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return lines, cursor


def sums_by_role(lines: list[dict]) -> dict[str, dict[str, int]]:
    sums: dict[str, dict[str, int]] = {}
    for line in lines:
        units = sums.setdefault(line["role"], {})
        units[line["unit"]] = units.get(line["unit"], 0) + line["amount"]
    return sums


async def adjust(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str] = ADMIN
) -> httpx.Response:
    return await client.post(f"{path}/adjustments", json=body, headers=headers)


async def test_statement_adds_up_to_the_balances_on_both_sides(app_client: Client) -> None:
    client, pool = app_client
    pid = uuid.uuid4()
    await publish(
        pool,
        pid,
        {"referrer": {"amount": 2000, "unit": "USD"}, "referee": {"amount": 1000, "unit": "USD"}},
    )
    alice = await enrol(pool, pid, "alice-ext")
    # Bob referred Alice before she enrolled herself: she got a referee reward.
    bob = uuid.uuid4()
    referred_alice = conversion(pid, bob)
    referred_alice = referred_alice.model_copy(update={"referee_customer_id": "alice-ext"})
    await convert(pool, referred_alice)
    # Alice refers three friends; one is refunded after issue (clawed back).
    friends = [conversion(pid, alice) for _ in range(3)]
    for event in friends:
        await convert(pool, event)
    await apply(pool, consumers.on_referral_reversed, reversal(friends[0]))
    path = f"/v1/programs/{pid}/participants/{alice}"
    ok(
        await client.post(
            f"{path}/redemptions", json={"amount": 700, "unit": "USD"}, headers=ADMIN
        ),
        201,
    )
    ok(
        await adjust(
            client, path, {"kind": "goodwill", "amount": 250, "unit": "USD", "reason": "late"}
        ),
        201,
    )
    ok(
        await adjust(
            client, path, {"kind": "correction", "amount": -50, "unit": "USD", "reason": "typo"}
        ),
        201,
    )

    view = ok(await client.get(f"{path}/rewards", headers=ADMIN))
    assert view["balances"] == {"USD": 2 * 2000 - 700 + 250 - 50}
    assert view["referee_balances"] == {"USD": 1000}
    sides = sorted((r["side"], r["status"], r["reversal"]) for r in view["rewards"])
    assert sides == [
        ("referee", "issued", None),
        ("referrer", "issued", None),
        ("referrer", "issued", None),
        ("referrer", "reversed", "clawed_back"),
    ]

    statement = ok(await client.get(f"{path}/statement", headers=ADMIN))
    lines, _ = await read_on(client, f"{path}/statement", None)
    assert lines == statement["lines"]
    expected = {
        "balances": view["balances"],
        "pending": view["pending"],
        "referee_balances": view["referee_balances"],
        "referee_pending": view["referee_pending"],
    }
    assert statement["totals"] == expected
    assert {k: v for k, v in sums_by_role(lines).items() if v} == {
        "balances": {"USD": 3500},
        "referee_balances": {"USD": 1000},
    }
    # Each line's balance runs: the last line of each account is its total.
    last: dict[str, int] = {}
    for line in lines:
        last[line["role"]] = line["balance"]
    assert last == {"balances": 3500, "referee_balances": 1000}
    kinds = [line["kind"] for line in lines if line["role"] == "balances"]
    assert sorted(kinds) == sorted(
        ["grant"] * 3 + ["clawback", "redemption", "adjustment", "adjustment"]
    )
    adjustments = [line for line in lines if line["kind"] == "adjustment"]
    assert [(a["amount"], a["actor"], a["reason"]) for a in adjustments] == [
        (250, "admin", "late"),
        (-50, "admin", "typo"),
    ]
    # A unit filter keeps totals and lines to that unit.
    other = ok(await client.get(f"{path}/statement", params={"unit": "MB"}, headers=ADMIN))
    assert other["lines"] == [] and other["totals"]["balances"] == {}

    # The program's statement: what it still owes equals reward-totals' liability, and the
    # cost is what is owed plus what was paid out.
    program = ok(await client.get(f"/v1/programs/{pid}/statement", headers=ADMIN))
    totals = ok(await client.get(f"/v1/programs/{pid}/reward-totals", headers=ADMIN))
    assert program["totals"]["liability"] == {"USD": totals["units"]["USD"]["liability"]}
    # Alice's two sides, Bob, the referee rewards of Alice's two friends not refunded, and
    # what Alice redeemed.
    assert program["totals"]["cost"] == {"USD": 3500 + 1000 + 2000 + 2 * 1000 + 700}
    assert program["totals"]["cost"]["USD"] == (
        program["totals"]["liability"]["USD"] + program["totals"]["paid_out"]["USD"]
    )
    await assert_ledger_balanced(pool)


async def test_pages_never_repeat_or_skip_while_entries_are_written(
    app_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, pool = app_client
    # The transaction below stays open across the reads, as a stuck one would: no read
    # waits for it longer than this.
    monkeypatch.setattr(ledger_statement, "HORIZON_WAIT_S", 0.2)
    pid = uuid.uuid4()
    await publish(pool, pid, {"referrer": {"amount": 100, "unit": "USD"}})
    alice = await enrol(pool, pid, "alice-ext")
    for _ in range(5):
        await convert(pool, conversion(pid, alice))
    path = f"/v1/programs/{pid}/participants/{alice}/statement"

    first = ok(await client.get(path, params={"limit": 2}, headers=ADMIN))
    assert first["has_more"] and len(first["lines"]) == 2
    # An adjustment whose transaction is still in flight (its entry id is taken), then a
    # conversion committed after it (a higher id, visible at once).
    async with pool.acquire() as in_flight:
        tx = in_flight.transaction()
        await tx.start()
        await in_flight.execute("SELECT pg_current_xact_id()")
        await convert(pool, conversion(pid, alice))
        await in_flight.execute(
            "INSERT INTO adjustments (id, program_id, participant_id, kind, amount, unit, "
            "reason, actor) VALUES ($1, $2, $3, 'goodwill', 7, 'USD', 'late', 'admin')",
            adjustment_id := uuid.uuid4(),
            pid,
            alice,
        )
        await ledger.adjust(in_flight, adjustment_id, pid, alice, 7, "USD", "admin")
        same = ok(
            await client.get(
                path, params={"limit": 2, "cursor": first["next_cursor"]}, headers=ADMIN
            )
        )
        again = ok(
            await client.get(
                path, params={"limit": 2, "cursor": first["next_cursor"]}, headers=ADMIN
            )
        )
        assert same == again  # a cursor names a position, not a page number
        rest, cursor = await read_on(client, path, first["next_cursor"])
        # Only the five entries written before the transaction in flight: the conversion
        # committed after it would sort after a line no reader has seen yet.
        assert len(first["lines"] + rest) == 5
        assert ok(await client.get(path, headers=ADMIN))["totals"]["balances"] == {"USD": 500}
        await tx.commit()
    later, _ = await read_on(client, path, cursor)
    assert [line["kind"] for line in later] == ["adjustment", "grant"]
    paged = first["lines"] + rest + later
    whole = ok(await client.get(path, params={"limit": 1000}, headers=ADMIN))
    assert paged == whole["lines"]
    assert len({(x["entry_id"], x["account"]) for x in paged}) == len(paged) == 7
    assert whole["totals"]["balances"] == {"USD": 607} == {"USD": sum(x["amount"] for x in paged)}
    bad = await client.get(path, params={"cursor": "not-a-cursor"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["field"] == "cursor"


async def test_a_read_lists_what_was_committed_before_it_while_older_transactions_run(
    app_client: Client,
) -> None:
    client, pool = app_client
    pid = uuid.uuid4()
    await publish(pool, pid, {"referrer": {"amount": 100, "unit": "USD"}})
    alice = await enrol(pool, pid, "alice-ext")
    await convert(pool, conversion(pid, alice))
    path = f"/v1/programs/{pid}/participants/{alice}"
    async with pool.acquire() as older:
        # A transaction that began before the adjustment (a consumer's batch, the relay of an
        # earlier version) and is still running when finance reads.
        tx = older.transaction()
        await tx.start()
        await older.execute("SELECT pg_current_xact_id()")
        made = ok(
            await adjust(
                client, path, {"kind": "goodwill", "amount": 5, "unit": "USD", "reason": "sorry"}
            ),
            201,
        )
        read = asyncio.create_task(client.get(f"{path}/statement", headers=ADMIN))
        await asyncio.sleep(0.3)
        assert not read.done()  # it waits for the transactions in flight when it was asked
        await tx.commit()
        lines = ok(await read)["lines"]
    assert [(x["kind"], x["adjustment_id"]) for x in lines][-1] == ("adjustment", made["id"])


async def test_csv_is_the_whole_statement(app_client: Client) -> None:
    client, pool = app_client
    pid = uuid.uuid4()
    await publish(pool, pid, {"referrer": {"amount": 300, "unit": "USD"}})
    alice = await enrol(pool, pid, "alice-ext")
    for _ in range(3):
        await convert(pool, conversion(pid, alice))
    path = f"/v1/programs/{pid}/participants/{alice}"
    ok(
        await adjust(
            client,
            path,
            {"kind": "goodwill", "amount": 5, "unit": "USD", "reason": "=HYPERLINK(1)"},
        ),
        201,
    )

    async def settled() -> bool:
        # A posting shows once every transaction open when it was written has ended (the
        # outbox relay may hold one while it sends), and the three grants are written one by
        # one: wait until the lines and the balance both reach the last of them.
        body = ok(await client.get(f"{path}/statement", headers=ADMIN))
        lines = sum(x["amount"] for x in body["lines"])
        return lines == body["totals"]["balances"].get("USD") == 905

    await eventually(settled, timeout_s=30)
    response = await client.get(f"{path}/statement.csv", headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    statement = ok(await client.get(f"{path}/statement", headers=ADMIN))
    assert [int(r["entry_id"]) for r in rows] == [x["entry_id"] for x in statement["lines"]]
    assert sum(int(r["amount"]) for r in rows) == statement["totals"]["balances"]["USD"] == 905
    assert rows[-1]["reason"] == "'=HYPERLINK(1)"  # kept as text by spreadsheets
    # The same filters as the JSON statement: UTC days, the last one included.
    today = datetime.now(UTC).date()
    for params, expected in [
        ({"since": str(today), "until": str(today)}, 4),
        ({"since": str(today + timedelta(days=1))}, 0),
        ({"until": str(today - timedelta(days=1))}, 0),
        ({"unit": "MB"}, 0),
    ]:
        filtered = await client.get(f"{path}/statement.csv", params=params, headers=ADMIN)
        assert len(list(csv.DictReader(io.StringIO(filtered.text)))) == expected, params
    for params in ({"until": "0"}, {"since": "2026-02-30"}, {"since": "20260101"}):
        refused = await client.get(f"{path}/statement.csv", params=params, headers=ADMIN)
        assert refused.status_code == 422 and refused.json()["field"] == next(iter(params))
    program_csv = await client.get(f"/v1/programs/{pid}/statement.csv", headers=ADMIN)
    assert len(list(csv.DictReader(io.StringIO(program_csv.text)))) == 2 * 4
    missing = await client.get(
        f"/v1/programs/{pid}/participants/{uuid.uuid4()}/statement.csv", headers=ADMIN
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_adjustments_need_a_reason_are_idempotent_and_name_the_key(
    app_client: Client,
) -> None:
    client, pool = app_client
    pid = uuid.uuid4()
    await publish(pool, pid, {"referrer": {"amount": 1000, "unit": "USD"}})
    alice = await enrol(pool, pid, "alice-ext")
    await convert(pool, conversion(pid, alice))
    path = f"/v1/programs/{pid}/participants/{alice}"
    goodwill = {"kind": "goodwill", "amount": 500, "unit": "USD"}

    for body, field in [
        (goodwill, "reason"),
        ({**goodwill, "reason": "   "}, "reason"),
        ({**goodwill, "amount": -5, "reason": "x"}, "amount"),
        ({**goodwill, "kind": "correction", "amount": 0, "reason": "x"}, "amount"),
        ({**goodwill, "kind": "gift", "reason": "x"}, "kind"),
    ]:
        refused = await adjust(client, path, body)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["field"] == field

    # Idempotent by Idempotency-Key ...
    keyed = {**ADMIN, "Idempotency-Key": "adj-1"}
    body = {**goodwill, "reason": "support ticket 42"}
    made = ok(await adjust(client, path, body, keyed), 201)
    replay = await adjust(client, path, body, keyed)
    assert replay.json() == made and replay.headers["idempotent-replayed"] == "true"
    # ... and by the client's own reference.
    fixed = {
        "kind": "correction",
        "amount": -200,
        "unit": "USD",
        "reason": "double",
        "reference": "r-1",
    }
    first = ok(await adjust(client, path, fixed), 201)
    second = ok(await adjust(client, path, fixed), 200)
    assert second["id"] == first["id"] and second["balance"] == first["balance"] == 1300
    clash = await adjust(client, path, {**fixed, "amount": -300})
    assert clash.status_code == 409 and clash.json()["field"] == "reference"
    too_much = await adjust(client, path, {**fixed, "amount": -5000, "reference": "r-2"})
    assert too_much.status_code == 409 and too_much.json()["field"] == "amount"
    unknown = await adjust(client, f"/v1/programs/{pid}/participants/{uuid.uuid4()}", body)
    assert unknown.status_code == 404

    # A program key is recorded by its id; another program's key may not adjust.
    issued = new_program_key()
    async with pool.acquire() as conn:
        await store_key(conn, issued.key_id, pid, issued.key_hash)
    by_key = {"Authorization": f"Bearer {issued.secret}"}
    made_by_key = ok(await adjust(client, path, {**body, "reason": "by key"}, by_key), 201)
    assert made_by_key["actor"] == f"key:{issued.key_id}"
    other = new_program_key()
    async with pool.acquire() as conn:
        await store_key(conn, other.key_id, uuid.uuid4(), other.key_hash)
    foreign = await adjust(client, path, body, {"Authorization": f"Bearer {other.secret}"})
    assert foreign.status_code == 403

    lines = ok(await client.get(f"{path}/statement", headers=ADMIN))["lines"]
    adjustments = [
        (x["amount"], x["actor"], x["reason"]) for x in lines if x["kind"] == "adjustment"
    ]
    assert adjustments == [
        (500, "admin", "support ticket 42"),
        (-200, "admin", "double"),
        (500, f"key:{issued.key_id}", "by key"),
    ]
    view = ok(await client.get(f"{path}/rewards", headers=ADMIN))
    assert view["balances"] == {"USD": 1800}
    await assert_ledger_balanced(pool)


async def test_a_cancelled_reward_says_so_and_roi_per_variant(app_client: Client) -> None:
    client, pool = app_client
    pid = uuid.uuid4()
    definition = ProgramDefinition.model_validate(
        {
            "destination_url": "https://shop.example.com/",
            "rewards": {"referrer": {"amount": 1000, "unit": "USD"}, "hold_days": 30},
            "variants": [{"name": "big", "rewards": {"referrer": {"amount": 3000, "unit": "USD"}}}],
        }
    )
    published = ProgramPublished(
        program_id=pid, version=1, effective_from=T0, name="p", definition=definition
    )
    await apply(pool, consumers.on_program_published, published)
    alice = await enrol(pool, pid, "alice-ext")
    plain = [conversion(pid, alice, amount=10_000) for _ in range(3)]
    big = [
        conversion(pid, alice, amount=20_000).model_copy(update={"variant": "big"})
        for _ in range(2)
    ]
    for event in plain + big:
        await convert(pool, event)
    # One refunded during its hold (cancelled), one partly refunded.
    await apply(pool, consumers.on_referral_reversed, reversal(plain[0]))
    partial = reversal(big[0], full=False).model_copy(update={"refunded_amount": 5000})
    await apply(pool, consumers.on_referral_reversed, partial)
    path = f"/v1/programs/{pid}/participants/{alice}"
    ok(
        await adjust(
            client, path, {"kind": "goodwill", "amount": 100, "unit": "USD", "reason": "x"}
        ),
        201,
    )

    view = ok(await client.get(f"{path}/rewards", headers=ADMIN))
    assert sorted(r["reversal"] or "-" for r in view["rewards"]) == ["-"] * 4 + ["cancelled"]
    roi = ok(await client.get(f"/v1/programs/{pid}/roi", headers=ADMIN))
    by_variant = {v["variant"]: v for v in roi["variants"]}
    assert by_variant[None]["conversions"] == 2
    assert by_variant[None]["revenue"] == {"USD": 20_000}
    assert by_variant[None]["reward_cost"] == {"USD": 2000}
    assert by_variant[None]["roi"] == {"USD": 9.0}
    assert by_variant["big"]["revenue"] == {"USD": 35_000}
    assert by_variant["big"]["reward_cost"] == {"USD": 6000}
    assert roi["adjustments"] == {"USD": 100}
    assert roi["program"]["reward_cost"] == {"USD": 8100}
    assert roi["program"]["revenue"] == {"USD": 55_000}
    assert roi["program"]["roi"] == {"USD": round((55_000 - 8100) / 8100, 4)}
