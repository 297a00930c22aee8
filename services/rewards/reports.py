"""What the API shows: a participant's balances, rewards and progress to the next milestone
(the scoreboard); a program's totals; its webhook signing secret."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.rewards import ledger
from services.rewards import repository as repo
from services.rewards.models import (
    BalanceOut,
    BudgetOut,
    MilestoneOut,
    ProgressOut,
    RewardOut,
    SecretOut,
    TotalsOut,
    UnitTotals,
)
from services.rewards.rules import next_milestone
from shared.contracts.sections.rewards import Milestone
from shared.http.problems import Problem, not_found


async def participant_rewards(
    pool: asyncpg.Pool, program_id: UUID, participant_id: UUID
) -> BalanceOut:
    """Progress is measured against the policy in force now, in the variant of the
    participant's latest conversion. 404 for a participant that is not the program's: the
    service knows participants from ``participant.enrolled`` and from conversions, so one
    not heard of yet (or of another program) reads as not found, not as an empty balance."""
    if not await repo.participants.belongs(pool, participant_id, program_id):
        raise not_found("participant", participant_id, "participant_id")
    customer_hash = await repo.participants.customer_hash(pool, participant_id)
    rows = await repo.rewards.of_participant(pool, program_id, participant_id, customer_hash)
    converted = await repo.conversions.converted_count(pool, program_id, participant_id)
    variant = await repo.conversions.latest_variant(pool, program_id, participant_id)
    policy = await repo.programs.current_policy(pool, program_id, variant)
    # A milestone taken back by refunds is no longer reached (until it is reached again).
    reached = {
        r["rule"] for r in rows if r["rule"].startswith("milestone:") and r["status"] != "reversed"
    }

    def milestone_out(m: Milestone) -> MilestoneOut:
        return MilestoneOut(
            threshold=m.threshold,
            perk=m.perk,
            amount=m.amount,
            unit=m.unit,
            reached=f"milestone:{m.threshold}" in reached,
        )

    upcoming = next_milestone(policy, converted)
    balances, pending = await ledger.participant_balances(pool, program_id, participant_id)
    referee_balances, referee_pending = await ledger.referee_balances(
        pool, program_id, customer_hash
    )
    reversals = await ledger.reversal_kinds(
        pool, [r["id"] for r in rows if r["status"] == "reversed"]
    )
    return BalanceOut(
        participant_id=participant_id,
        balances=balances,
        pending=pending,
        referee_balances=referee_balances,
        referee_pending=referee_pending,
        rewards=[RewardOut(**dict(r), reversal=_reversal(r, reversals)) for r in rows],
        progress=ProgressOut(
            converted=converted,
            milestones=[
                milestone_out(m) for m in sorted(policy.milestones, key=lambda m: m.threshold)
            ],
            next_milestone=milestone_out(upcoming) if upcoming else None,
            remaining_to_next=upcoming.threshold - converted if upcoming else None,
        ),
    )


def _reversal(reward: asyncpg.Record, kinds: dict[UUID, str]) -> str | None:
    """A reversed reward without a cancel or clawback entry (capped, nothing to take back)
    never reached its recipient: cancelled."""
    if reward["status"] != "reversed":
        return None
    return kinds.get(reward["id"], "cancelled")


async def program_totals(pool: asyncpg.Pool, program_id: UUID) -> TotalsOut:
    """Rewards per unit and state, what caps cut, what the ledger says the program still owes,
    and the budget of the policy in force now."""
    units: dict[str, UnitTotals] = {}
    for r in await repo.rewards.totals(pool, program_id):
        totals = units.setdefault(r["unit"], UnitTotals())
        if r["status"] in ("issued", "pending", "available", "reversed", "failed"):
            setattr(totals, r["status"], getattr(totals, r["status"]) + int(r["amount"]))
        totals.capped_requested += int(r["cut"])
    for unit, owed in (await ledger.liabilities(pool, program_id)).items():
        units.setdefault(unit, UnitTotals()).liability = owed
    policy = await repo.programs.current_policy(pool, program_id, None)
    budget = None
    if policy.budget is not None and policy.budget_unit is not None:
        used = await repo.rewards.budget_used(pool, program_id, policy.budget_unit)
        budget = BudgetOut(
            amount=policy.budget,
            unit=policy.budget_unit,
            used=used,
            left=max(0, policy.budget - used),
        )
    return TotalsOut(program_id=program_id, units=units, budget=budget)


async def webhook_secret(pool: asyncpg.Pool, program_id: UUID) -> SecretOut:
    secret = await repo.programs.webhook_secret(pool, program_id)
    if secret is None:
        raise Problem(
            404, "no-webhook-secret", "This program has no webhook fulfilment", field="program_id"
        )
    return SecretOut(program_id=program_id, webhook_secret=secret)
