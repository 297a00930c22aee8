"""Pending signups in the links insights (``referral.pending`` from attribution): counted on
the scoreboard of the participant whose code they typed and in the program's analytics while
they wait, and no longer once resolved, whichever of the two events is applied first."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from services.links.insights.projector import HANDLERS
from shared.contracts import ReferralPending
from shared.messaging.outbox import envelope_for
from tests.integration.links.conftest import Links


async def _apply(links: Links, *events: ReferralPending) -> None:
    pool = links.app.state.runtime.pool
    for event in events:
        async with pool.acquire() as conn, conn.transaction():
            await HANDLERS[event.TOPIC](conn, event, envelope_for(event, "/test"))


def _pending(program_id: str, code: str) -> ReferralPending:
    now = datetime.now(UTC)
    return ReferralPending(
        referral_id=uuid.uuid4(),
        program_id=uuid.UUID(program_id),
        referee_customer_id=f"cust-{uuid.uuid4().hex[:6]}",
        waiting_for="code",
        referral_code=code.lower(),  # as the friend typed it
        signed_up_at=now,
        received_at=now,
        expires_at=now + timedelta(hours=6),
    )


def _resolved(event: ReferralPending, status: str) -> ReferralPending:
    return event.model_copy(update={"resolved_at": datetime.now(UTC), "status": status})


async def test_pending_signups_show_until_resolved_in_any_event_order(links: Links) -> None:
    program = await links.program()
    pid = program["id"]
    me = (await links.enrol(pid)).json()
    token = me["scoreboard_url"].rsplit("/", 1)[1]
    waiting, resolved_first = _pending(pid, me["code"]), _pending(pid, me["code"])
    await _apply(links, waiting, _resolved(resolved_first, "active"), resolved_first)

    async def counts() -> tuple[int, int]:
        board = (await links.http.get(f"/v1/scoreboards/{token}")).json()
        today = date.today()
        analytics = await links.http.get(
            f"/v1/programs/{pid}/analytics?since={today - timedelta(days=1)}"
            f"&until={today + timedelta(days=1)}",
            headers=links.admin,
        )
        assert analytics.status_code == 200, analytics.text
        return board["pending_signups"], analytics.json()["pending_signups"]

    assert await counts() == (1, 1)
    await _apply(links, _resolved(waiting, "unattributed"))
    assert await counts() == (0, 0)
    pool = links.app.state.runtime.pool
    rows = await pool.fetch("SELECT resolution FROM rm_pending_referrals ORDER BY resolution")
    assert [r["resolution"] for r in rows] == ["active", "unattributed"]
