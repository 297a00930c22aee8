"""Settings base: every service is configured from environment variables only (12-factor)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service needs. Services subclass it to add their own fields."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    service_name: str = "service"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"

    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    db_pool_min: int = 1
    db_pool_max: int = 10

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # On for real Kafka. The embedded Tansu broker cannot answer InitProducerId: dev turns it off.
    kafka_enable_idempotence: bool = True
    # Tansu does not wake long-poll fetches on new data, so dev uses a short wait.
    kafka_fetch_max_wait_ms: int = 500
    # Tansu numbers group generations from 0 and aiokafka sends LeaveGroup only for
    # generation > 0, so a restarted first member waits this long to get its partitions back.
    kafka_session_timeout_ms: int = 10_000
    kafka_topic_partitions: int = 6
    kafka_replication_factor: int = 1

    consumer_batch_size: int = 200
    consumer_max_attempts: int = 3
    consumer_retry_backoff_s: float = 0.2

    relay_batch_size: int = 500
    relay_poll_interval_s: float = 1.0
    # Sent outbox rows are kept this long so that `python -m shared.messaging.replay` can
    # re-publish them after a broker lost data (disaster recovery window).
    outbox_retention_hours: float = Field(default=168.0, gt=0)

    admin_api_key: SecretStr | None = Field(default=None)
    # Let webhooks and other outbound calls reach private/loopback addresses (tests, on-prem).
    outbound_allow_private_networks: bool = False
