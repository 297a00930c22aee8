"""Rewards: rules per program version, the ledger, and issuing."""

from __future__ import annotations

from fastapi import FastAPI

from services.rewards import api
from services.rewards.consumers import HANDLERS
from services.rewards.settings import RewardsSettings
from shared.service import create_service_app


def create_app(settings: RewardsSettings | None = None) -> FastAPI:
    settings = settings or RewardsSettings()
    return create_service_app(
        settings=settings, title="Referral rewards", routers=[api.router], handlers=HANDLERS
    )
