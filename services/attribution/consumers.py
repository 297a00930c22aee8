"""The one place that maps topics to handlers in attribution: two consumer groups, the
service's own for referral inputs and ``CLICKS_CONSUMER`` for ``link.clicked``, stored a batch
at a time by ``click_ingest.ClickConsumer`` (one inbox statement and one multi-row insert)."""

from __future__ import annotations

from services.attribution.click_ingest import ClickConsumer, store_click
from services.attribution.pii import Hasher
from services.attribution.read_models import on_program_published, participant_handlers
from services.attribution.settings import AttributionSettings
from shared.contracts import LinkClicked, ProgramPublished
from shared.http.key_events import KEY_HANDLERS
from shared.messaging.groups import ConsumerGroup

CLICKS_CONSUMER = "attribution-clicks"


def consumer_groups(settings: AttributionSettings) -> list[ConsumerGroup]:
    hasher = Hasher(settings.pii_hash_key.get_secret_value())
    return [
        ConsumerGroup(
            {
                ProgramPublished.TOPIC: on_program_published,
                **participant_handlers(hasher),
                **KEY_HANDLERS,
            }
        ),
        # Clicks: their own group, so a click backlog never delays referral events, and
        # applied a batch at a time (see click_ingest).
        ConsumerGroup(
            {LinkClicked.TOPIC: store_click},
            name=CLICKS_CONSUMER,
            consumer=ClickConsumer,
            min_batch_size=500,
        ),
    ]
