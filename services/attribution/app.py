"""Attribution: clicks, referees, signups and conversions."""

from __future__ import annotations

from fastapi import FastAPI

from services.attribution import api, imports_api, pending, review_api, stripe_api
from services.attribution.consumers import consumer_groups
from services.attribution.customer_imports import CUSTOMERS, customer_import
from services.attribution.pii import Hasher
from services.attribution.settings import AttributionSettings
from shared.imports.runner import ImportRunner
from shared.service import Runtime, create_service_app


def create_app(settings: AttributionSettings | None = None) -> FastAPI:
    settings = settings or AttributionSettings()
    app: FastAPI

    async def on_start(rt: Runtime) -> None:
        rt.spawn(
            pending.run(rt.pool, rt.stop, interval_s=settings.pending_sweep_interval_s),
            "pending-signups",
        )
        hasher = Hasher(settings.pii_hash_key.get_secret_value())
        runner = ImportRunner(rt.pool, {CUSTOMERS.name: customer_import(hasher)})
        app.state.import_runner = runner
        rt.spawn(runner.run(rt.stop), "imports")

    app = create_service_app(
        settings=settings,
        title="Referral attribution",
        routers=[api.router, review_api.router, stripe_api.router, imports_api.router],
        consumers=consumer_groups(settings),
        on_start=on_start,
    )
    return app
