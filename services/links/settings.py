from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from shared.settings import ServiceSettings


class LinksSettings(ServiceSettings):
    service_name: str = "links"
    port: int = 8001
    # Where referral links point, e.g. https://ref.example.com (no trailing slash).
    public_base_url: str = "http://127.0.0.1:8001"
    # What this process serves (LINKS_ROLE): ``all`` (the default: one process does it all),
    # ``gateway`` (redirect, click capture, QR codes: scaled on HTTP load) or ``insights``
    # (the projector's consumers, the management and analytics APIs and the pages: scaled on
    # consumer lag). See app.py.
    links_role: Literal["all", "gateway", "insights"] = "all"

    # Click capture. The journal (also the spill file) must be on a disk the next process of
    # this replica sees (a volume in Kubernetes); one folder per replica.
    click_buffer_size: int = 100_000
    click_batch_size: int = 2000
    click_journal_dir: str | None = None  # default: <tmp>/referral-links-clicks-<port>
    click_send_timeout_s: float = 2.0
    # User agents that crawlerdetect lists but that resolve links for a person (an app's
    # HTTP stack).
    click_allowed_agents: str = r"^(okhttp|Dalvik|CFNetwork)/"
    # Visitor hashes are HMACs under a daily key derived from this secret (shared by every
    # replica so that they agree); defaults to a key derived from ADMIN_API_KEY.
    visitor_hash_secret: SecretStr | None = None

    # Redirect: per-IP token bucket (per replica) and the code cache.
    redirect_rate_per_s: float = 20.0
    redirect_burst: float = 100.0
    redirect_cache_codes: int = 200_000
    redirect_cache_ttl_s: float = 300.0

    # The support story asks the owners of the parts links does not hold: rewards (the
    # ledger) and notifications (the messages sent); each call gives up after this long.
    rewards_url: str = "http://127.0.0.1:8003"
    notifications_url: str = "http://127.0.0.1:8004"
    story_timeout_s: float = Field(default=3.0, gt=0, le=30)

    def journal_path(self) -> Path:
        if self.click_journal_dir:
            return Path(self.click_journal_dir)
        return Path(tempfile.gettempdir()) / f"referral-links-clicks-{self.port}"

    def visitor_secret(self) -> bytes:
        if self.visitor_hash_secret is not None:
            return self.visitor_hash_secret.get_secret_value().encode()
        admin = self.admin_api_key.get_secret_value() if self.admin_api_key else ""
        return f"visitor-hash:{admin}".encode()


# ``ce_source`` of every event links writes to its outbox.
EVENT_SOURCE = "/services/links"
