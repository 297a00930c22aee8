"""The parts of a participant's story that links does not hold, asked of the services that
own them over HTTP (see docs/architecture.md, "The support story"): the ledger and its
statement's postings from rewards, the messages sent from notifications. Each call has its own
time limit; a service that does not answer, or answers with an error, leaves its part out and
says why, and the rest of the story is answered all the same."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from pydantic import ValidationError

from services.links.insights.story_models import (
    LedgerReward,
    PartState,
    PartStateName,
    Posting,
    StoryLedger,
    StoryMessage,
)

# The newest messages shown; more are in notifications' delivery log (paginated).
MESSAGES_SHOWN = 100
# The oldest postings shown (a statement reads oldest first, for its running balances); the
# rest are in rewards' statement (paginated, and as CSV).
POSTINGS_SHOWN = 500


@dataclass(frozen=True)
class Sources:
    """Where the other services are, and the key to ask them with: the caller's own key on
    the API (it is the admin key or this program's key, which every service accepts), the
    admin key on the console."""

    rewards_url: str
    notifications_url: str
    token: str | None
    timeout_s: float


class _Missing(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def _get(
    client: httpx.AsyncClient,
    sources: Sources,
    service: str,
    url: str,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    if not sources.token:
        raise _Missing(f"no key to ask {service} with")
    try:
        # httpx's timeout bounds each phase (connect, each read); this bounds the whole call,
        # so that an answer dripping in slowly cannot hold the story.
        async with asyncio.timeout(sources.timeout_s):
            response = await client.get(
                url,
                params=params,
                headers={"Authorization": f"Bearer {sources.token}"},
                timeout=sources.timeout_s,
            )
    except (TimeoutError, httpx.TimeoutException):
        raise _Missing(f"{service} did not answer within {sources.timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise _Missing(f"{service} could not be reached ({type(exc).__name__})") from None
    if response.status_code in (401, 403):
        raise _Missing(f"{service} refused the key ({response.status_code})")
    if response.status_code >= 500:
        raise _Missing(f"{service} answered {response.status_code}")
    return response


def _body(response: httpx.Response, service: str) -> Any:
    if response.status_code != 200:
        raise _Missing(f"{service} answered {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise _Missing(f"{service} answered something other than JSON") from None


async def fetch_ledger(
    client: httpx.AsyncClient, sources: Sources, program_id: UUID, participant_id: UUID
) -> tuple[StoryLedger | None, PartState]:
    """Balances, pending amounts and rewards as the ledger has them (rewards'
    ``GET .../participants/{pid}/rewards``). Rewards answers 404 for a participant it has not
    heard of yet: that is an empty ledger, said so."""
    url = f"{sources.rewards_url}/v1/programs/{program_id}/participants/{participant_id}/rewards"
    try:
        response = await _get(client, sources, "rewards", url)
        if response.status_code == 404:
            empty = StoryLedger(balances={}, pending={}, rewards=[])
            detail = "rewards has not heard of this participant yet"
            return empty, PartState(part="ledger", source="rewards", state="ok", detail=detail)
        body = _body(response, "rewards")
        ledger = StoryLedger(
            balances=body["balances"],
            pending=body["pending"],
            rewards=[LedgerReward(reward_id=r["id"], **r) for r in body["rewards"]],
        )
    except _Missing as missing:
        return None, PartState(
            part="ledger", source="rewards", state="unavailable", detail=missing.detail
        )
    except (KeyError, TypeError, ValidationError):
        detail = "rewards answered in a shape links does not know"
        return None, PartState(part="ledger", source="rewards", state="unavailable", detail=detail)
    return ledger, PartState(part="ledger", source="rewards", state="ok")


def _postings_state(state: PartStateName, detail: str | None = None) -> PartState:
    return PartState(part="postings", source="rewards", state=state, detail=detail)


def _statement_absent(response: httpx.Response) -> bool:
    """A 404 that does not name the participant: the path itself is unknown, so this rewards
    version has no statement yet (rewards' own 404 names ``participant_id``)."""
    try:
        field = response.json().get("field")
    except (ValueError, AttributeError):
        field = None
    return field != "participant_id"


async def fetch_postings(
    client: httpx.AsyncClient, sources: Sources, program_id: UUID, participant_id: UUID
) -> tuple[list[Posting] | None, bool, PartState]:
    """The participant's ledger statement (rewards' ``GET .../participants/{pid}/statement``),
    oldest first with each account's running balance, following its cursor up to
    ``POSTINGS_SHOWN`` postings; and whether there are more than shown."""
    participant = f"/v1/programs/{program_id}/participants/{participant_id}"
    url = f"{sources.rewards_url}{participant}/statement"
    postings: list[Posting] = []
    cursor: str | None = None
    more = False
    try:
        while True:
            params: dict[str, Any] = {"limit": POSTINGS_SHOWN - len(postings)}
            if cursor:
                params["cursor"] = cursor
            response = await _get(client, sources, "rewards", url, params)
            if response.status_code == 404 and not postings:
                if _statement_absent(response):
                    detail = "this rewards version offers no ledger statement"
                    return None, False, _postings_state("not_offered", detail)
                detail = "rewards has not heard of this participant yet"
                return [], False, _postings_state("ok", detail)
            body = _body(response, "rewards")
            lines = body["lines"]
            postings += [Posting(**line) for line in lines]
            more, cursor = bool(body["has_more"]), body["next_cursor"]
            # An empty page cannot move the cursor on: stop rather than ask again.
            if not more or not lines or not cursor or len(postings) >= POSTINGS_SHOWN:
                break
    except _Missing as missing:
        return None, False, _postings_state("unavailable", missing.detail)
    except (KeyError, TypeError, ValidationError):
        detail = "rewards answered in a shape links does not know"
        return None, False, _postings_state("unavailable", detail)
    return postings[:POSTINGS_SHOWN], more, _postings_state("ok")


async def fetch_messages(
    client: httpx.AsyncClient, sources: Sources, program_id: UUID, participant_id: UUID
) -> tuple[list[StoryMessage] | None, bool, PartState]:
    """The newest messages sent (or not) to the participant, from notifications' delivery
    log; and whether there are more than shown."""
    url = f"{sources.notifications_url}/v1/programs/{program_id}/deliveries"
    params = {"participant_id": str(participant_id), "limit": MESSAGES_SHOWN}
    try:
        body = _body(await _get(client, sources, "notifications", url, params), "notifications")
        messages = [StoryMessage(message_id=m["id"], **m) for m in body["items"]]
        more = body.get("next_cursor") is not None
    except _Missing as missing:
        state = PartState(
            part="messages", source="notifications", state="unavailable", detail=missing.detail
        )
        return None, False, state
    except (KeyError, TypeError, ValidationError):
        detail = "notifications answered in a shape links does not know"
        state = PartState(
            part="messages", source="notifications", state="unavailable", detail=detail
        )
        return None, False, state
    return messages, more, PartState(part="messages", source="notifications", state="ok")
