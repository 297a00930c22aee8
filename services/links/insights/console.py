"""The ops console's overview: every program's funnel of all time, rewards that failed or are
stuck, and the DLQ sizes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.links.insights import repository as repo
from services.links.insights.models import (
    ConsoleOverview,
    FunnelStage,
    ProgramSummary,
    RewardIssue,
)

# A reward available or on hold this long past its time without reaching the participant
# is shown as stuck on the console.
STUCK_AFTER = timedelta(hours=1)
_STAGES = ("enrolled", "shared", "clicked", "signed_up", "converted", "rewarded")


async def console_overview(
    conn: repo.Conn, dlq_sizes: dict[str, int], limit: int = 100
) -> ConsoleOverview:
    """Every program with its funnel (all time), rewards that failed or are stuck (due more
    than an hour ago and not issued), and the DLQ sizes the caller measured."""
    programs = [
        ProgramSummary(
            program_id=r["program_id"],
            name=r["name"],
            status=r["status"],
            participants=int(r["enrolled"]),
            conversions=int(r["converted"]),
            funnel=[FunnelStage(stage=s, count=int(r[s])) for s in _STAGES],  # type: ignore[arg-type]
        )
        for r in await repo.program_funnels(conn)
    ]
    failed: list[RewardIssue] = []
    stuck: list[RewardIssue] = []
    for r in await repo.reward_issues(conn, datetime.now(UTC) - STUCK_AFTER, limit):
        has_failed = r["state"] == "failed"
        issue = RewardIssue(
            reward_id=r["reward_id"],
            program_id=r["program_id"],
            referrer_id=r["referrer_id"],
            amount=int(r["amount"]),
            unit=r["unit"],
            reason=(r["failure_reason"] or "failed")
            if has_failed
            else f"{r['state']} since its due time, not issued",
            since=r["failed_at"] if has_failed else r["due"],
        )
        (failed if has_failed else stuck).append(issue)
    return ConsoleOverview(
        programs=programs, failed_rewards=failed, stuck_rewards=stuck, dlq=dict(dlq_sizes)
    )
