"""Turning conversions into rewards: record the conversion, find the program version in force
when it happened (attribution names it; a purchase reported late keeps its old rules), read
the referrer's history, apply the rules, then write one row per (conversion, rule, side) with
its first ledger entry and announce it. A conversion whose version has not arrived waits
(``awaiting_program``) and is rewarded when the version is published, in the purchase's
trace. Holds start when the reward is created, so a late purchase still gets its full hold."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from opentelemetry import trace

from services.rewards import events, ledger, lifecycle
from services.rewards import repository as repo
from services.rewards.metrics import REWARDS_CREATED
from services.rewards.rules import (
    BASE_RULE,
    RewardLine,
    initial_state,
    milestone_threshold,
    policy_of,
    rewards_for,
)
from shared.contracts import ProgramPublished, ReferralConverted
from shared.contracts.sections.rewards import RewardPolicy
from shared.http.outbound import new_webhook_secret
from shared.telemetry import extract_context, inject_context

_tracer = trace.get_tracer(__name__)


async def record_conversion(conn: asyncpg.Connection, event: ReferralConverted) -> int:
    """Record a conversion and create its rewards; returns how many were created (0 also when
    the conversion was seen before, or waits for its program version)."""
    traceparent = inject_context().get("traceparent")
    conversion = await repo.conversions.insert_locking_referrer(conn, event, traceparent)
    if conversion is None:
        return 0  # seen before: rewarded, or waiting for its program version
    return await _create_rewards(conn, conversion)


async def record_program_version(conn: asyncpg.Connection, event: ProgramPublished) -> None:
    """Keep a published version (and a webhook signing secret when it needs one), then reward
    the program's conversions that were waiting for a version."""
    await repo.locks.lock_program_versions(conn, event.program_id)
    await repo.programs.insert_version(
        conn,
        event.program_id,
        event.version,
        event.effective_from,
        event.definition.model_dump(mode="json"),
    )
    policies = [event.definition.rewards] + [
        v.rewards for v in event.definition.variants if v.rewards is not None
    ]
    if any(p.fulfilment.kind == "webhook" for p in policies):
        # The signing secret never travels on the bus: the company reads it from our API.
        await repo.programs.add_webhook_secret(conn, event.program_id, new_webhook_secret())
    for conversion_id in await repo.conversions.awaiting_program(conn, event.program_id):
        await _reward_waiting(conn, conversion_id)


async def _reward_waiting(conn: asyncpg.Connection, conversion_id: uuid.UUID) -> int:
    """Create the rewards of a conversion recorded earlier: its referrer locked first (like a
    new conversion), then the row."""
    owner = await repo.conversions.owner(conn, conversion_id)
    if owner is None:
        return 0
    await repo.locks.lock_referrer(conn, owner["program_id"], owner["referrer_id"])
    conversion = await repo.conversions.get_for_update(conn, conversion_id)
    if conversion is None or conversion["status"] != "awaiting_program":
        return 0
    if not conversion["traceparent"]:
        return await _create_rewards(conn, conversion)
    # Rewarded in the purchase's trace (ops follow one referral), linked to the publication
    # that released it.
    parent = extract_context({"traceparent": conversion["traceparent"]})
    released_by = trace.get_current_span().get_span_context()
    links = [trace.Link(released_by, {"link.kind": "released_by"})] if released_by.is_valid else []
    with _tracer.start_as_current_span("rewards.reward_waiting", context=parent, links=links):
        return await _create_rewards(conn, conversion)


async def _create_rewards(conn: asyncpg.Connection, conversion: asyncpg.Record) -> int:
    """The rewards of a conversion row the caller has locked (and its referrer too)."""
    if conversion["status"] != "awaiting_program":
        return 0
    version = await _version_for(conn, conversion)
    if version is None:
        # A publication may be committing right now: wait for it, then look again (a new
        # statement sees what committed meanwhile).
        await repo.locks.lock_program_versions(conn, conversion["program_id"])
        version = await _version_for(conn, conversion)
        if version is None:
            return 0
    policy = _policy(conversion["program_id"], version, conversion["variant"])
    if policy.budget is not None:
        await repo.locks.lock_program_budget(conn, conversion["program_id"])
    now = datetime.now(UTC)
    # Caps per period are read at the conversion's own time (it may arrive late).
    refunded, partly_refunded, history = await repo.rewards.history(conn, conversion, policy)
    if refunded:
        # Refunded before we saw it: nothing to grant.
        await repo.conversions.set_status(
            conn, conversion["conversion_id"], "reversed", version["version"]
        )
        return 0
    lines = rewards_for(
        policy,
        referrer_id=conversion["referrer_id"],
        referee_customer_id=conversion["referee_customer_id"],
        conversion_amount=max(0, conversion["amount"] - partly_refunded),
        sequence=conversion["sequence"],
        history=history,
    )
    rewards = [_new_reward(conversion, version["version"], policy, line, now) for line in lines]
    # Rewards an earlier delivery created (unique per conversion, rule, side) are skipped.
    inserted = await ledger.grant(conn, repo.rewards.insertion(rewards), rewards)
    created = 0
    for line, reward in zip(lines, rewards, strict=True):
        if reward["id"] not in inserted:
            continue
        created += 1
        REWARDS_CREATED.labels(reward["status"]).inc()
        await events.announce(conn, events.reward_created(reward, now))
        if line.rule != BASE_RULE:
            threshold = milestone_threshold(line.rule)
            await events.announce(conn, events.milestone_reached(reward, threshold, now))
        await lifecycle.fulfil_new(conn, reward, now=now)
    await repo.conversions.set_status(
        conn, conversion["conversion_id"], "rewarded", version["version"]
    )
    return created


def _new_reward(
    conversion: asyncpg.Record,
    version: int,
    policy: RewardPolicy,
    line: RewardLine,
    now: datetime,
) -> dict[str, Any]:
    """The row of a new reward, with its conversion's facts that events and fulfilment read."""
    hold = timedelta(days=policy.hold_days)
    status = initial_state(line.amount, hold, policy.fulfilment.kind)
    return {
        "id": uuid.uuid4(),
        "conversion_id": conversion["conversion_id"],
        "referral_id": conversion["referral_id"],
        "converted_at": conversion["converted_at"],
        "program_id": conversion["program_id"],
        "program_version": version,
        "variant": conversion["variant"],
        "referrer_id": conversion["referrer_id"],
        "rule": line.rule,
        "side": line.side,
        "recipient": line.recipient,
        "amount": line.amount,
        "requested_amount": line.asked,
        "unit": line.unit,
        "perk": line.perk,
        "status": status,
        "fulfilment": policy.fulfilment.kind,
        "available_at": None if status == "capped" else now + hold,
        "issued_at": now if status == "issued" else None,
        "next_attempt_at": now if status == "available" else None,
    }


# Versions are immutable, so their parsed policies can be kept in the process.
_POLICIES: dict[tuple[uuid.UUID, int, str | None], RewardPolicy] = {}
_POLICY_CACHE_SIZE = 4096


def _policy(program_id: uuid.UUID, version: Mapping[str, Any], variant: str | None) -> RewardPolicy:
    key = (program_id, version["version"], variant)
    policy = _POLICIES.get(key)
    if policy is None:
        if len(_POLICIES) >= _POLICY_CACHE_SIZE:
            _POLICIES.clear()
        policy = _POLICIES[key] = policy_of(version["definition"], variant)
    return policy


async def _version_for(
    conn: asyncpg.Connection, conversion: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The version named by attribution, else the highest version in force at the
    conversion time, so a late conversion keeps its old rules."""
    program_id, named = conversion["program_id"], conversion["program_version"]
    if named is not None:
        if (program_id, named, conversion["variant"]) in _POLICIES:
            return {"version": named, "definition": None}  # the policy is cached
        return await repo.programs.version_named(conn, program_id, named)
    return await repo.programs.version_in_force(conn, program_id, conversion["converted_at"])
