"""A participant's whole story for a support agent, in one answer: enrolment, shares and
clicks, the referrals they made with attribution's decisions (state, every rule that fired),
the purchases and refunds, the rewards of both sides and milestones (all from links' read
models, one snapshot), then the ledger and the messages sent, asked of rewards and
notifications at the same time (``story_sources``). A service that does not answer leaves its
part empty and named in ``parts``; the rest is answered."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from services.links.insights import story_repository as repo
from services.links.insights import story_sources
from services.links.insights.story_models import (
    ClickDay,
    DecisionRule,
    ParticipantStory,
    StoryClicks,
    StoryConversion,
    StoryMilestone,
    StoryParticipant,
    StoryReward,
    StoryShare,
    StorySignup,
)
from services.links.insights.story_sources import Sources
from services.links.settings import LinksSettings

# Bounds of one answer; a support agent reads the newest, exports have the rest.
CLICK_DAYS = 366
SHARES = 500
SIGNUPS = 500
REWARDS = 1000


def sources(settings: LinksSettings, token: str | None) -> Sources:
    return Sources(
        rewards_url=settings.rewards_url.rstrip("/"),
        notifications_url=settings.notifications_url.rstrip("/"),
        token=token,
        timeout_s=settings.story_timeout_s,
    )


def _rows(model: Any, rows: list[asyncpg.Record]) -> list[Any]:
    return [model(**dict(r)) for r in rows]


def _without_referral(row: asyncpg.Record) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "referral_id"}


async def _local(conn: asyncpg.Connection, program_id: UUID, who: asyncpg.Record) -> dict[str, Any]:
    pid = who["id"]
    totals = await repo.click_totals(conn, pid)
    signup_rows = await repo.signups(conn, pid, SIGNUPS + 1)
    ids = [r["referral_id"] for r in signup_rows[:SIGNUPS]]
    rules: dict[UUID, list[DecisionRule]] = defaultdict(list)
    for r in await repo.decision_rules(conn, ids):
        rules[r["referral_id"]].append(DecisionRule(**_without_referral(r)))
    purchases: dict[UUID, list[StoryConversion]] = defaultdict(list)
    for r in await repo.conversions(conn, ids):
        purchases[r["referral_id"]].append(StoryConversion(**_without_referral(r)))
    signups = [
        StorySignup(
            **dict(r), rules=rules.get(r["referral_id"], []),
            conversions=purchases.get(r["referral_id"], []),
        )
        for r in signup_rows[:SIGNUPS]
    ]  # fmt: skip
    user = who["external_user_id"]
    return {
        "participant": StoryParticipant(
            participant_id=pid,
            program_id=who["program_id"],
            external_user_id=user,
            code=who["code"],
            name=who["name"],
            locale=who["locale"],
            variant=who["variant"],
            enrolled_at=who["enrolled_at"],
            erased_at=who["erased_at"],
            leaderboard_opt_in=who["leaderboard_opt_in"],
            referred_by=await repo.referred_by(conn, program_id, user),
        ),
        "clicks": StoryClicks(
            clicks=int(totals["clicks"]),
            attributable=int(totals["attributable"]),
            invites=int(totals["invites"]),
            daily=_rows(ClickDay, await repo.click_days(conn, pid, CLICK_DAYS)),
        ),
        "shares": _rows(StoryShare, await repo.shares(conn, pid, SHARES)),
        "signups": signups,
        "signups_truncated": len(signup_rows) > SIGNUPS,
        "rewards": _rows(StoryReward, await repo.rewards(conn, program_id, pid, user, REWARDS)),
        "milestones": _rows(StoryMilestone, await repo.milestones(conn, program_id, pid)),
    }


async def participant_story(
    pool: asyncpg.Pool, program_id: UUID, participant_id: UUID, sources: Sources
) -> ParticipantStory | None:
    """The story, or None when the program has no such participant."""
    who = await repo.participant(pool, program_id, participant_id)
    if who is None:
        return None

    async def local() -> dict[str, Any]:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            # One snapshot: the counts and the lists agree with each other.
            return await _local(conn, program_id, who)

    async with httpx.AsyncClient(follow_redirects=False) as client:
        held, (ledger, ledger_state), statement, fetched = await asyncio.gather(
            local(),
            story_sources.fetch_ledger(client, sources, program_id, participant_id),
            story_sources.fetch_postings(client, sources, program_id, participant_id),
            story_sources.fetch_messages(client, sources, program_id, participant_id),
        )
    postings, more_postings, postings_state = statement
    messages, more, messages_state = fetched
    if ledger is not None and postings is not None:
        update = {"postings": postings, "postings_truncated": more_postings}
        ledger = ledger.model_copy(update=update)
    parts = [ledger_state, postings_state, messages_state]
    return ParticipantStory(
        **held,
        ledger=ledger,
        messages=messages,
        messages_truncated=more,
        parts=parts,
        complete=all(p.state != "unavailable" for p in parts),
    )
