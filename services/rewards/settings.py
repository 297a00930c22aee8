from __future__ import annotations

from shared.settings import ServiceSettings


class RewardsSettings(ServiceSettings):
    service_name: str = "rewards"
    port: int = 8003
