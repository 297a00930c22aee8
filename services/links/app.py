"""The links app factory. One process can play every part (``LINKS_ROLE=all``, the default:
``make dev`` and the tests), or one of two that scale apart:

- ``gateway``: the redirect ``/r/{code}`` (with click capture and the redirect cache), the QR
  codes, the browser snippet and health; no consumer group, no pages. Scaled on HTTP load.
- ``insights``: the projector's consumer groups (``links``, ``links-clicks``) and every other
  route: program, participant and analytics APIs, scoreboard pages and the console. Scaled on
  the consumer groups' lag. The management API is light and shares this process rather than
  getting a third kind of pod.

The gateway writes no outbox row (clicks go straight to the broker), so it runs no outbox
relay; the other roles do, and a database lock keeps one active."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from services.links.consumers import consumer_groups
from services.links.gateway import api as gateway_api
from services.links.gateway import snippet
from services.links.gateway.lifecycle import start_gateway, stop_gateway
from services.links.insights import api as insights_api
from services.links.participants import api as participant_api
from services.links.participants import import_api, qr_api
from services.links.participants.bulk_enrolment import PARTICIPANTS, enrolment_of
from services.links.programs import api as program_api
from services.links.programs import internal_api
from services.links.settings import LinksSettings
from services.links.web import console_pages, scoreboard_pages
from shared.imports.runner import ImportRunner
from shared.messaging.groups import ConsumerGroup
from shared.service import Runtime, create_service_app

_TITLES = {
    "all": "Referral links gateway",
    "gateway": "Referral links gateway (redirects)",
    "insights": "Referral links gateway (management and insights)",
}


def _parts(role: str, settings: LinksSettings) -> tuple[list[APIRouter], list[ConsumerGroup]]:
    gateway = [gateway_api.router, qr_api.router, snippet.router]
    rest = [
        program_api.router,
        participant_api.router,
        import_api.router,
        internal_api.router,
        insights_api.router,
        scoreboard_pages.router,
        console_pages.router,
    ]
    if role == "gateway":
        return gateway, []
    if role == "insights":
        return rest, consumer_groups(settings)
    return [*rest[:3], *gateway, *rest[3:]], consumer_groups(settings)


def create_app(settings: LinksSettings | None = None) -> FastAPI:
    settings = settings or LinksSettings()
    role = settings.links_role
    serves_redirects = role in ("all", "gateway")
    routers, consumers = _parts(role, settings)
    app: FastAPI

    async def on_start(rt: Runtime) -> None:
        if serves_redirects:
            await start_gateway(app, rt, settings)
        if role != "gateway":
            # Bulk enrolments: any replica serving the API runs (or takes over) import jobs.
            runner = ImportRunner(
                rt.pool, {PARTICIPANTS.name: enrolment_of(settings.public_base_url)}
            )
            app.state.import_runner = runner
            rt.spawn(runner.run(rt.stop), "imports")

    async def on_stop(rt: Runtime) -> None:
        if serves_redirects:
            await stop_gateway(app)

    app = create_service_app(
        settings=settings,
        title=_TITLES[role],
        routers=routers,
        consumers=consumers,
        relays_outbox=role != "gateway",
        asks_links_about_keys=False,  # links issues the keys: its own table is the authority
        on_start=on_start,
        on_stop=on_stop,
    )
    gateway_api.install_gateway(app)
    return app
