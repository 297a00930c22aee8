"""A program's reports from the read models: analytics (funnel, daily series, rejections,
reward cost, K), NPS, and the experiment report per variant. Ranges are whole UTC days."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import asyncpg

from services.links.insights import repository as repo
from services.links.insights import stats
from services.links.insights.models import (
    DailyPoint,
    ExperimentReport,
    FunnelStage,
    NpsPoint,
    NpsReport,
    ProgramAnalytics,
    VariantStats,
)
from services.links.insights.ranges import day_bounds

# Variant name shown for participants of a program that runs no experiment.
NO_VARIANT = "default"
_ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC))


async def program_analytics(
    conn: repo.Conn, program_id: UUID, since: date, until: date
) -> ProgramAnalytics:
    start, end = day_bounds(since, until)
    series = {
        name: await repo.daily_counts(conn, name, program_id, start, end)
        for name in ("enrolled", "shares", "signups", "conversions", "rewards_issued")
    }
    clicks = await repo.daily_invites(conn, program_id, since, until)
    totals = await repo.range_totals(conn, program_id, start, end)
    cost = await repo.reward_cost(conn, program_id, start, end)
    n_conversions = sum(series["conversions"].values())
    n_invites = sum(clicks.values())
    funnel = [
        FunnelStage(stage="enrolled", count=sum(series["enrolled"].values())),
        FunnelStage(stage="shared", count=int(totals["sharers"])),
        FunnelStage(stage="clicked", count=n_invites),
        FunnelStage(stage="signed_up", count=sum(series["signups"].values())),
        FunnelStage(stage="converted", count=n_conversions),
        FunnelStage(stage="rewarded", count=int(totals["rewarded"])),
    ]
    days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    return ProgramAnalytics(
        program_id=program_id,
        since=since,
        until=until,
        funnel=funnel,
        rejections_by_reason=await repo.rejections(conn, program_id, start, end),
        flagged=int(totals["flagged"]),
        pending_signups=int(totals["pending_signups"]),
        daily=[
            DailyPoint(
                day=d, clicks=clicks.get(d, 0), **{k: v.get(d, 0) for k, v in series.items()}
            )
            for d in days
        ],
        reward_cost=cost,
        cost_per_acquired_customer={
            unit: amount / n_conversions for unit, amount in cost.items() if n_conversions
        },
        k_factor=stats.k_factor(int(totals["participants"]), n_invites, n_conversions),
        roi=stats.roi_lines(await repo.referred_revenue(conn, program_id, start, end), cost),
    )


async def nps_report(conn: repo.Conn, program_id: UUID, since: date, until: date) -> NpsReport:
    start, end = day_bounds(since, until)
    daily = []
    totals = [0, 0, 0]
    for r in await repo.nps_daily(conn, program_id, start, end):
        counts = (int(r["promoters"]), int(r["passives"]), int(r["detractors"]))
        summary = stats.nps_from_counts(*counts)
        daily.append(NpsPoint(day=r["day"], responses=summary.responses, nps=summary.nps))
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    overall = stats.nps_from_counts(*totals)
    return NpsReport(
        program_id=program_id,
        responses=overall.responses,
        promoters=overall.promoters,
        passives=overall.passives,
        detractors=overall.detractors,
        nps=overall.nps,
        daily=daily,
    )


async def experiment_report(
    conn: repo.Conn, program_id: UUID, version: int | None = None
) -> ExperimentReport:
    """Per variant: participants (enrolled while ``version`` was in force, or all), their
    sharing, invites, signups and converted referrals; the share of participants who brought a
    converted friend with its Wilson interval; and the test of the best variant against the
    control (the first variant of the definition)."""
    if version is not None:
        definition = await repo.definition_of(conn, program_id, version)
    else:
        definition = await repo.definition_now(conn, program_id)
    declared = [v["name"] for v in definition.get("variants") or []]
    groups: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in await repo.variant_participants(conn, program_id, version):
        groups[r["variant"] or NO_VARIANT].append(r)
    names = declared + sorted(n for n in groups if n not in declared)
    if not names:
        names = [NO_VARIANT]
    variants: list[VariantStats] = []
    arms: list[stats.Arm] = []
    for name in names:
        members = groups.get(name, [])
        n = len(members)
        converters = sum(1 for r in members if r["conversions"] > 0)
        invites = sum(int(r["invites"]) for r in members)
        conversions = sum(int(r["conversions"]) for r in members)
        interval = stats.wilson_interval(converters, n)
        ids = [r["participant_id"] for r in members]
        cost = await repo.reward_cost(conn, program_id, *_ALL_TIME, ids) if members else {}
        revenue = await repo.referred_revenue(conn, program_id, *_ALL_TIME, ids) if members else {}
        variants.append(
            VariantStats(
                variant=name,
                participants=n,
                sharers=sum(1 for r in members if r["shared"]),
                clicks=invites,
                signups=sum(int(r["signups"]) for r in members),
                conversions=conversions,
                participant_conversion_rate=converters / n if n else None,
                ci_low=interval[0] if interval else None,
                ci_high=interval[1] if interval else None,
                click_conversion_rate=conversions / invites if invites else None,
                reward_cost_per_conversion={
                    unit: amount / conversions for unit, amount in cost.items() if conversions
                },
                k_factor=stats.k_factor(n, invites, conversions),
                roi=stats.roi_lines(revenue, cost),
            )
        )
        arms.append(stats.Arm(name, converters, n))
    result = stats.experiment_verdict(arms)
    return ExperimentReport(
        program_id=program_id,
        version=version,
        variants=variants,
        verdict=result.sentence,
        p_value=result.p_value,
        best=result.best,
    )
