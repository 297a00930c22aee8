"""Reads of the analytics read models, answering with the models of ``models.py``.

Time ranges are whole UTC days, ``since`` and ``until`` both included. The read models are
joined with links' own tables (programs, versions, participants) for names, codes, tokens and
definitions; never with another service's data."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.links.analytics import stats
from services.links.analytics.models import (
    ConsoleOverview,
    DailyPoint,
    ExperimentReport,
    FriendRow,
    FunnelStage,
    LeaderboardRow,
    NextMilestone,
    NpsPoint,
    NpsReport,
    ProgramAnalytics,
    ProgramSummary,
    RewardIssue,
    RewardSums,
    Scoreboard,
    ShareLink,
    VariantStats,
)
from services.links.sharing import DEFAULT_CHANNELS, share_url

Conn = asyncpg.Connection | asyncpg.Pool

# Variant name shown for participants of a program that runs no experiment.
NO_VARIANT = "default"
# A reward available or on hold this long past its time without reaching the participant
# is shown as stuck on the console.
STUCK_AFTER = timedelta(hours=1)
FRIENDS_SHOWN = 50
_ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC))


def mask(text: str | None) -> str:
    """Enough of an id or name to recognise it, not to learn it: ``customer-42`` ->
    ``cu•••42``."""
    if not text:
        return "•••"
    if len(text) <= 4:
        return text[0] + "•••"
    if len(text) <= 7:
        return text[:2] + "•••"
    return text[:2] + "•••" + text[-2:]


def day_bounds(since: date, until: date) -> tuple[datetime, datetime]:
    """[since 00:00 UTC, the day after until 00:00 UTC)."""
    start = datetime.combine(since, time(), UTC)
    return start, datetime.combine(until + timedelta(days=1), time(), UTC)


@functools.cache
def _default_base_url() -> str:
    from services.links.settings import LinksSettings

    return LinksSettings().public_base_url


def _channels(definition: dict[str, Any]) -> list[str]:
    return list((definition.get("links") or {}).get("channels") or DEFAULT_CHANNELS)


async def _definition_now(conn: Conn, program_id: UUID) -> dict[str, Any]:
    """The definition in force now, or the first version's before any is in force."""
    row = await conn.fetchval(
        "SELECT definition FROM program_versions WHERE program_id = $1 "
        "ORDER BY (effective_from <= now()) DESC, "
        "CASE WHEN effective_from <= now() THEN version ELSE -version END DESC LIMIT 1",
        program_id,
    )
    return dict(row or {})


def _milestones(definition: dict[str, Any], variant: str | None) -> list[dict[str, Any]]:
    rewards = definition.get("rewards") or {}
    for v in definition.get("variants") or []:
        if v.get("name") == variant and v.get("rewards") is not None:
            rewards = v["rewards"]
    return sorted(rewards.get("milestones") or [], key=lambda m: m["threshold"])


# --- participant scoreboard and leaderboard ---------------------------------------------

_SCOREBOARD_PARTICIPANT = """
SELECT pa.id, pa.program_id, pa.code, pa.locale, pa.name, pa.variant, pa.leaderboard_opt_in,
       p.name AS program_name
FROM participants pa JOIN programs p ON p.id = pa.program_id
WHERE pa.scoreboard_token = $1 AND pa.erased_at IS NULL
"""
_PARTICIPANT_COUNTS = """
SELECT coalesce((SELECT sum(attributable) FROM rm_clicks_daily WHERE participant_id = $1), 0)
           AS clicks,
       coalesce((SELECT sum(invites) FROM rm_clicks_daily WHERE participant_id = $1), 0)
           AS unique_clicks,
       (SELECT count(*) FROM rm_referrals WHERE referrer_id = $1 AND signed_up_at IS NOT NULL)
           AS signups,
       (SELECT count(*) FROM rm_referral_states WHERE referrer_id = $1 AND status = 'converted')
           AS conversions
"""
_FRIENDS = """
SELECT referee_customer_id, referral_id, status, status_at FROM rm_referral_states
WHERE referrer_id = $1 AND status_at IS NOT NULL
ORDER BY status_at DESC, referral_id LIMIT $2
"""
_REWARD_SUMS = """
SELECT unit,
       coalesce(sum(value) FILTER (WHERE state = 'pending'), 0) AS pending,
       coalesce(sum(value) FILTER (WHERE state = 'available'), 0) AS available,
       coalesce(sum(value) FILTER (WHERE state = 'issued'), 0) AS issued,
       coalesce(sum(reversed_amount) FILTER (WHERE state = 'reversed'), 0) AS reversed,
       coalesce(sum(value) FILTER (WHERE state = 'failed'), 0) AS failed
FROM rm_reward_states
WHERE referrer_id = $1 AND side = 'referrer'
GROUP BY unit ORDER BY unit
"""


async def scoreboard(conn: Conn, token: str, *, base_url: str | None = None) -> Scoreboard | None:
    """A participant's scoreboard behind its secret token; None for an unknown token or an
    erased participant. ``base_url`` is the public base of links (the settings' one if
    omitted)."""
    if not token or len(token) > 200:
        return None
    me = await conn.fetchrow(_SCOREBOARD_PARTICIPANT, token)
    if me is None:
        return None
    base = (base_url or _default_base_url()).rstrip("/")
    definition = await _definition_now(conn, me["program_id"])
    link = f"{base}/r/{me['code']}"
    counts = await conn.fetchrow(_PARTICIPANT_COUNTS, me["id"])
    friends = [
        FriendRow(name=mask(r["referee_customer_id"]), status=r["status"], at=r["status_at"])
        for r in await conn.fetch(_FRIENDS, me["id"], FRIENDS_SHOWN)
    ]
    rewards = [RewardSums(**dict(r)) for r in await conn.fetch(_REWARD_SUMS, me["id"])]
    converted = int(counts["conversions"])
    upcoming = [m for m in _milestones(definition, me["variant"]) if m["threshold"] > converted]
    next_milestone = None
    if upcoming:
        m = upcoming[0]
        next_milestone = NextMilestone(
            threshold=m["threshold"],
            converted=converted,
            remaining=m["threshold"] - converted,
            perk=m.get("perk"),
            amount=m.get("amount"),
            unit=m.get("unit"),
        )
    return Scoreboard(
        participant_id=me["id"],
        program_id=me["program_id"],
        program_name=me["program_name"],
        display_name=me["name"],
        locale=me["locale"],
        code=me["code"],
        link_url=link,
        qr_svg_url=f"{base}/qr/{me['code']}.svg",
        qr_png_url=f"{base}/qr/{me['code']}.png",
        shares=[ShareLink(channel=c, url=share_url(link, c)) for c in _channels(definition)],
        clicks=int(counts["clicks"]),
        unique_clicks=int(counts["unique_clicks"]),
        signups=int(counts["signups"]),
        conversions=converted,
        friends=friends,
        rewards=rewards,
        next_milestone=next_milestone,
        leaderboard=await leaderboard(conn, me["program_id"], limit=10, you=me["id"]),
        embed_origins=list((definition.get("links") or {}).get("embed_origins") or []),
    )


_LEADERBOARD = """
WITH counts AS (
    SELECT p.participant_id, p.enrolled_at,
           count(r.referral_id) FILTER (WHERE r.status = 'converted') AS converted,
           count(r.referral_id) FILTER (WHERE r.signed_up_at IS NOT NULL) AS signups
    FROM rm_participants p
    LEFT JOIN rm_referral_states r ON r.referrer_id = p.participant_id
    WHERE p.program_id = $1 AND p.enrolled_at IS NOT NULL AND p.erased_at IS NULL
    GROUP BY p.participant_id, p.enrolled_at
), ranked AS (
    SELECT c.*, rank() OVER (ORDER BY converted DESC, signups DESC) AS rank
    FROM counts c WHERE c.converted > 0 OR c.signups > 0 OR c.participant_id = $3
)
SELECT k.participant_id, k.converted, k.signups, k.rank, pa.name, pa.code,
       coalesce(pa.leaderboard_opt_in, false) AS opt_in
FROM ranked k LEFT JOIN participants pa ON pa.id = k.participant_id
WHERE k.rank <= $2 OR k.participant_id = $3
ORDER BY k.rank, k.enrolled_at, k.participant_id
"""


async def leaderboard(
    conn: Conn, program_id: UUID, limit: int = 10, you: UUID | None = None
) -> list[LeaderboardRow]:
    """Top referrers by converted referrals (then signups); ties share a rank. ``you`` is
    marked, and listed after the top ones if it is not among them. A name shows only if its
    participant opted in; otherwise it is masked."""
    rows = await conn.fetch(_LEADERBOARD, program_id, limit, you)
    out: list[LeaderboardRow] = []
    for r in rows:
        shown = r["name"] or r["code"] or str(r["participant_id"])
        out.append(
            LeaderboardRow(
                rank=int(r["rank"]),
                name=shown if r["opt_in"] else mask(shown),
                converted=int(r["converted"]),
                signups=int(r["signups"]),
                is_you=r["participant_id"] == you,
            )
        )
    return out[: limit + (1 if you is not None else 0)]


# --- program analytics ----------------------------------------------------------------------


def _per_day(rows: Iterable[asyncpg.Record]) -> dict[date, int]:
    return {r["day"]: int(r["n"]) for r in rows}


_DAY = "(({col}) AT TIME ZONE 'UTC')::date"


async def program_analytics(
    conn: Conn, program_id: UUID, since: date, until: date
) -> ProgramAnalytics:
    start, end = day_bounds(since, until)
    args = (program_id, start, end)

    async def daily(sql: str, col: str) -> dict[date, int]:
        day = _DAY.format(col=col)
        return _per_day(await conn.fetch(sql.format(day=day, col=col), *args))

    enrolled = await daily(
        "SELECT {day} AS day, count(*) AS n FROM rm_participants WHERE program_id = $1 "
        "AND {col} >= $2 AND {col} < $3 GROUP BY 1",
        "enrolled_at",
    )
    shares = await daily(
        "SELECT {day} AS day, count(*) AS n FROM rm_shares WHERE program_id = $1 "
        "AND {col} >= $2 AND {col} < $3 GROUP BY 1",
        "shared_at",
    )
    clicks = _per_day(
        await conn.fetch(
            "SELECT day, sum(invites) AS n FROM rm_clicks_daily WHERE program_id = $1 "
            "AND day >= $2 AND day <= $3 GROUP BY 1",
            program_id,
            since,
            until,
        )
    )
    signups = await daily(
        "SELECT {day} AS day, count(*) AS n FROM rm_referrals WHERE program_id = $1 "
        "AND {col} >= $2 AND {col} < $3 GROUP BY 1",
        "signed_up_at",
    )
    conversions = await daily(
        "SELECT {day} AS day, count(*) AS n FROM rm_referral_states WHERE program_id = $1 "
        "AND status = 'converted' AND {col} >= $2 AND {col} < $3 GROUP BY 1",
        "converted_at",
    )
    issued = await daily(
        "SELECT {day} AS day, count(*) AS n FROM rm_reward_states WHERE program_id = $1 "
        "AND {col} >= $2 AND {col} < $3 GROUP BY 1",
        "issued_time",
    )
    totals = await conn.fetchrow(
        """
        SELECT
          (SELECT count(DISTINCT participant_id) FROM rm_shares
            WHERE program_id = $1 AND shared_at >= $2 AND shared_at < $3) AS sharers,
          (SELECT count(DISTINCT referral_id) FROM rm_reward_states
            WHERE program_id = $1 AND referral_id IS NOT NULL
              AND issued_time >= $2 AND issued_time < $3) AS rewarded,
          (SELECT count(*) FROM rm_referrals
            WHERE program_id = $1 AND flagged_at >= $2 AND flagged_at < $3) AS flagged,
          (SELECT count(*) FROM rm_participants
            WHERE program_id = $1 AND enrolled_at < $3) AS participants
        """,
        *args,
    )
    rejections = {
        r["reason"]: int(r["n"])
        for r in await conn.fetch(
            "SELECT reason, count(*) AS n FROM rm_referrals, unnest(reject_rules) AS reason "
            "WHERE program_id = $1 AND rejected_at >= $2 AND rejected_at < $3 "
            "GROUP BY reason ORDER BY reason",
            *args,
        )
    }
    cost = await reward_cost(conn, program_id, start, end)
    n_conversions = sum(conversions.values())
    n_invites = sum(clicks.values())
    funnel = [
        FunnelStage(stage="enrolled", count=sum(enrolled.values())),
        FunnelStage(stage="shared", count=int(totals["sharers"])),
        FunnelStage(stage="clicked", count=n_invites),
        FunnelStage(stage="signed_up", count=sum(signups.values())),
        FunnelStage(stage="converted", count=n_conversions),
        FunnelStage(stage="rewarded", count=int(totals["rewarded"])),
    ]
    days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    return ProgramAnalytics(
        program_id=program_id,
        since=since,
        until=until,
        funnel=funnel,
        rejections_by_reason=rejections,
        flagged=int(totals["flagged"]),
        daily=[
            DailyPoint(
                day=d,
                enrolled=enrolled.get(d, 0),
                shares=shares.get(d, 0),
                clicks=clicks.get(d, 0),
                signups=signups.get(d, 0),
                conversions=conversions.get(d, 0),
                rewards_issued=issued.get(d, 0),
            )
            for d in days
        ],
        reward_cost=cost,
        cost_per_acquired_customer={
            unit: amount / n_conversions for unit, amount in cost.items() if n_conversions
        },
        k_factor=stats.k_factor(int(totals["participants"]), n_invites, n_conversions),
    )


async def reward_cost(
    conn: Conn,
    program_id: UUID,
    start: datetime,
    end: datetime,
    referrers: list[UUID] | None = None,
) -> dict[str, int]:
    """Per unit: what was issued in [start, end) minus what was clawed back in it."""
    rows = await conn.fetch(
        """
        SELECT unit, sum(n) AS n FROM (
            SELECT unit, value AS n FROM rm_reward_states
            WHERE program_id = $1 AND issued_time >= $2 AND issued_time < $3
              AND ($4::uuid[] IS NULL OR referrer_id = ANY($4))
            UNION ALL
            SELECT unit, -reversed_amount FROM rm_rewards
            WHERE program_id = $1 AND reversal_kind = 'clawed_back'
              AND reversed_at >= $2 AND reversed_at < $3
              AND ($4::uuid[] IS NULL OR referrer_id = ANY($4))
        ) x GROUP BY unit ORDER BY unit
        """,
        program_id,
        start,
        end,
        referrers,
    )
    return {r["unit"]: int(r["n"]) for r in rows}


# --- NPS ----------------------------------------------------------------------------------


async def nps_report(conn: Conn, program_id: UUID, since: date, until: date) -> NpsReport:
    start, end = day_bounds(since, until)
    rows = await conn.fetch(
        "SELECT (answered_at AT TIME ZONE 'UTC')::date AS day, "
        "count(*) FILTER (WHERE score >= 9) AS promoters, "
        "count(*) FILTER (WHERE score BETWEEN 7 AND 8) AS passives, "
        "count(*) FILTER (WHERE score <= 6) AS detractors "
        "FROM nps_responses WHERE program_id = $1 AND answered_at >= $2 AND answered_at < $3 "
        "GROUP BY 1 ORDER BY 1",
        program_id,
        start,
        end,
    )
    daily = []
    totals = [0, 0, 0]
    for r in rows:
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


# --- experiments ------------------------------------------------------------------------

_VARIANT_PARTICIPANTS = """
SELECT p.participant_id, coalesce(p.variant, '') AS variant,
       EXISTS (SELECT 1 FROM rm_shares s WHERE s.participant_id = p.participant_id) AS shared,
       coalesce((SELECT sum(invites) FROM rm_clicks_daily c
                 WHERE c.participant_id = p.participant_id), 0) AS invites,
       (SELECT count(*) FROM rm_referrals r
         WHERE r.referrer_id = p.participant_id AND r.signed_up_at IS NOT NULL) AS signups,
       (SELECT count(*) FROM rm_referral_states r
         WHERE r.referrer_id = p.participant_id AND r.status = 'converted') AS conversions
FROM rm_participants p
WHERE p.program_id = $1 AND p.enrolled_at IS NOT NULL
  AND ($2::int IS NULL OR $2 = (
        SELECT max(v.version) FROM program_versions v
        WHERE v.program_id = p.program_id AND v.effective_from <= p.enrolled_at))
"""


async def experiment_report(
    conn: Conn, program_id: UUID, version: int | None = None
) -> ExperimentReport:
    """Per variant: participants (enrolled while ``version`` was in force, or all), their
    sharing, invites, signups and converted referrals; the share of participants who brought a
    converted friend with its Wilson interval; and the test of the best variant against the
    control (the first variant of the definition)."""
    if version is not None:
        definition = await conn.fetchval(
            "SELECT definition FROM program_versions WHERE program_id = $1 AND version = $2",
            program_id,
            version,
        )
        definition = dict(definition or {})
    else:
        definition = await _definition_now(conn, program_id)
    declared = [v["name"] for v in definition.get("variants") or []]
    groups: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in await conn.fetch(_VARIANT_PARTICIPANTS, program_id, version):
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
        cost = (
            await reward_cost(
                conn,
                program_id,
                _ALL_TIME[0],
                _ALL_TIME[1],
                [r["participant_id"] for r in members],
            )
            if members
            else {}
        )
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


# --- ops console ----------------------------------------------------------------------------

_FUNNEL_ALL_TIME = """
SELECT p.id AS program_id, p.name, p.status,
  (SELECT count(*) FROM rm_participants x WHERE x.program_id = p.id
     AND x.enrolled_at IS NOT NULL) AS enrolled,
  (SELECT count(DISTINCT participant_id) FROM rm_shares x WHERE x.program_id = p.id) AS shared,
  (SELECT coalesce(sum(invites), 0) FROM rm_clicks_daily x WHERE x.program_id = p.id) AS clicked,
  (SELECT count(*) FROM rm_referrals x WHERE x.program_id = p.id
     AND x.signed_up_at IS NOT NULL) AS signed_up,
  (SELECT count(*) FROM rm_referral_states x WHERE x.program_id = p.id
     AND x.status = 'converted') AS converted,
  (SELECT count(DISTINCT referral_id) FROM rm_reward_states x WHERE x.program_id = p.id
     AND x.issued_time IS NOT NULL) AS rewarded
FROM programs p ORDER BY p.created_at, p.id
"""
_REWARD_ISSUES = """
SELECT reward_id, program_id, referrer_id, value AS amount, unit, state, failure_reason,
       failed_at, coalesce(available_at, created_at) AS due
FROM rm_reward_states
WHERE (state = 'failed') OR (state IN ('pending', 'available')
       AND coalesce(available_at, created_at) < $1)
ORDER BY coalesce(failed_at, available_at, created_at), reward_id LIMIT $2
"""
_STAGES = ("enrolled", "shared", "clicked", "signed_up", "converted", "rewarded")


async def console_overview(
    conn: Conn, dlq_sizes: dict[str, int], limit: int = 100
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
        for r in await conn.fetch(_FUNNEL_ALL_TIME)
    ]
    failed: list[RewardIssue] = []
    stuck: list[RewardIssue] = []
    for r in await conn.fetch(_REWARD_ISSUES, datetime.now(UTC) - STUCK_AFTER, limit):
        if r["state"] == "failed":
            failed.append(
                RewardIssue(
                    reward_id=r["reward_id"],
                    program_id=r["program_id"],
                    referrer_id=r["referrer_id"],
                    amount=int(r["amount"]),
                    unit=r["unit"],
                    reason=r["failure_reason"] or "failed",
                    since=r["failed_at"],
                )
            )
        else:
            stuck.append(
                RewardIssue(
                    reward_id=r["reward_id"],
                    program_id=r["program_id"],
                    referrer_id=r["referrer_id"],
                    amount=int(r["amount"]),
                    unit=r["unit"],
                    reason=f"{r['state']} since its due time, not issued",
                    since=r["due"],
                )
            )
    return ConsoleOverview(
        programs=programs, failed_rewards=failed, stuck_rewards=stuck, dlq=dict(dlq_sizes)
    )


# CSV exports live in exports.py; re-exported here for the pages.
from services.links.analytics.exports import (  # noqa: E402
    export_referrals_csv,
    export_rewards_csv,
)

__all__ = [
    "console_overview",
    "experiment_report",
    "export_referrals_csv",
    "export_rewards_csv",
    "leaderboard",
    "mask",
    "nps_report",
    "program_analytics",
    "scoreboard",
]
