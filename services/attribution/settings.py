from __future__ import annotations

from shared.settings import ServiceSettings


class AttributionSettings(ServiceSettings):
    service_name: str = "attribution"
    port: int = 8002
