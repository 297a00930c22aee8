from __future__ import annotations

from shared.settings import ServiceSettings


class RewardsSettings(ServiceSettings):
    service_name: str = "rewards"
    port: int = 8003
    # How often the scheduler looks for ended holds and due webhook calls when idle.
    rewards_scheduler_interval_s: float = 0.5
