from __future__ import annotations

from shared.settings import ServiceSettings


class LinksSettings(ServiceSettings):
    service_name: str = "links"
    port: int = 8001
    # Where referral links point, e.g. https://ref.example.com (no trailing slash).
    public_base_url: str = "http://127.0.0.1:8001"
    click_buffer_size: int = 100_000
    click_batch_size: int = 500
