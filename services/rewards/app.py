"""Rewards: rules per program version, the ledger, holds and fulfilment."""

from __future__ import annotations

from fastapi import FastAPI

from services.rewards import api, ledger_api, scheduler
from services.rewards.consumers import consumer_groups
from services.rewards.settings import RewardsSettings
from shared.service import Runtime, create_service_app


def create_app(settings: RewardsSettings | None = None) -> FastAPI:
    settings = settings or RewardsSettings()

    async def on_start(rt: Runtime) -> None:
        rt.spawn(
            scheduler.run(
                rt.pool,
                rt.stop,
                interval_s=settings.rewards_scheduler_interval_s,
                allow_private=settings.outbound_allow_private_networks,
            ),
            "reward-scheduler",
        )

    return create_service_app(
        settings=settings,
        title="Referral rewards",
        routers=[api.router, ledger_api.router],
        consumers=consumer_groups(settings),
        on_start=on_start,
    )
