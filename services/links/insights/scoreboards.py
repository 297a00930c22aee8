"""A participant's scoreboard (behind its secret token) and a program's leaderboard."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.links.insights import repository as repo
from services.links.insights.models import (
    FriendRow,
    LeaderboardRow,
    NextMilestone,
    RewardSums,
    Scoreboard,
    ShareLink,
)
from services.links.participants.sharing import channels_of, share_url

FRIENDS_SHOWN = 50


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


def milestones(definition: dict[str, Any], variant: str | None) -> list[dict[str, Any]]:
    """The milestones of the participant's variant (or of the version), by threshold."""
    rewards = definition.get("rewards") or {}
    for v in definition.get("variants") or []:
        if v.get("name") == variant and v.get("rewards") is not None:
            rewards = v["rewards"]
    return sorted(rewards.get("milestones") or [], key=lambda m: m["threshold"])


def next_milestone(
    definition: dict[str, Any], variant: str | None, converted: int
) -> NextMilestone | None:
    upcoming = [m for m in milestones(definition, variant) if m["threshold"] > converted]
    if not upcoming:
        return None
    m = upcoming[0]
    return NextMilestone(
        threshold=m["threshold"],
        converted=converted,
        remaining=m["threshold"] - converted,
        perk=m.get("perk"),
        amount=m.get("amount"),
        unit=m.get("unit"),
    )


async def scoreboard(conn: repo.Conn, token: str, *, base_url: str) -> Scoreboard | None:
    """A participant's scoreboard behind its secret token; None for an unknown token or an
    erased participant. ``base_url`` is the public base of links."""
    if not token or len(token) > 200:
        return None
    me = await repo.scoreboard_participant(conn, token)
    if me is None:
        return None
    base = base_url.rstrip("/")
    definition = await repo.definition_now(conn, me["program_id"])
    link = f"{base}/r/{me['code']}"
    counts = await repo.participant_counts(conn, me["id"])
    friends = [
        FriendRow(name=mask(r["referee_customer_id"]), status=r["status"], at=r["status_at"])
        for r in await repo.friends(conn, me["id"], FRIENDS_SHOWN)
    ]
    rewards = [RewardSums(**dict(r)) for r in await repo.reward_sums(conn, me["id"])]
    converted = int(counts["conversions"])
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
        shares=[ShareLink(channel=c, url=share_url(link, c)) for c in channels_of(definition)],
        clicks=int(counts["clicks"]),
        unique_clicks=int(counts["unique_clicks"]),
        signups=int(counts["signups"]),
        pending_signups=int(counts["pending_signups"]),
        conversions=converted,
        friends=friends,
        rewards=rewards,
        next_milestone=next_milestone(definition, me["variant"], converted),
        leaderboard=await leaderboard(conn, me["program_id"], limit=10, you=me["id"]),
        embed_origins=list((definition.get("links") or {}).get("embed_origins") or []),
    )


async def leaderboard(
    conn: repo.Conn, program_id: UUID, limit: int = 10, you: UUID | None = None
) -> list[LeaderboardRow]:
    """Top referrers by converted referrals (then signups); ties share a rank. ``you`` is
    marked, and listed after the top ones if it is not among them. A name shows only if its
    participant opted in; otherwise it is masked."""
    out: list[LeaderboardRow] = []
    for r in await repo.leaderboard(conn, program_id, limit, you):
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
