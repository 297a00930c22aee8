"""``python -m shared.messaging.topics``: create every topic and its DLQ twin, idempotently."""

from __future__ import annotations

import asyncio

from shared.messaging.producer import all_topics, ensure_topics
from shared.settings import ServiceSettings


def main() -> None:
    created = asyncio.run(ensure_topics(ServiceSettings()))
    print(f"{len(all_topics())} topics present, {len(created)} created")


if __name__ == "__main__":
    main()
