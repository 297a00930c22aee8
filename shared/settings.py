"""Settings base: every service is configured from environment variables only (12-factor)."""

from __future__ import annotations

from typing import Literal

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

    # The defaults are for Apache Kafka in production (docs/operations.md, "Kafka settings").
    # Development brokers override them through the environment: the embedded Tansu broker
    # needs idempotence off and a short fetch wait, a one-node Kafka needs replication 1
    # (devstack/profiles.py sets both).
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Idempotent producer: a retried send after a lost ack is not written twice, in order.
    kafka_enable_idempotence: bool = True
    # gzip needs no extra library; zstd, lz4 and snappy need cramjam next to aiokafka.
    kafka_compression_type: Literal["gzip", "zstd", "lz4", "snappy", "none"] = "gzip"
    # Kafka's own default: a long poll the broker answers early when data arrives.
    kafka_fetch_max_wait_ms: int = 500
    # A consumer that died is replaced after this long (Kafka's 45 s default idles its
    # partitions longer); graceful stops leave the group at once.
    kafka_session_timeout_ms: int = 10_000
    # Topics created by `ensure_topics`; existing topics are never altered.
    kafka_topic_partitions: int = 6
    kafka_replication_factor: int = Field(default=3, ge=1)
    # With acks=all a write needs this many in-sync replicas: one broker may be down and
    # nothing acknowledged is held by a single disk. Capped at the replication factor.
    kafka_min_insync_replicas: int = Field(default=2, ge=1)

    consumer_batch_size: int = 200
    consumer_max_attempts: int = 3
    consumer_retry_backoff_s: float = 0.2
    # A consumer loop that has not polled for this long (a Kafka client waiting for ever on a
    # coordinator or leader) is replaced by a new consumer; uncommitted offsets are re-read.
    consumer_stall_timeout_s: float = Field(default=120.0, gt=0)

    relay_batch_size: int = 500
    relay_poll_interval_s: float = 1.0
    # Sent outbox rows are kept this long so that `python -m shared.messaging.republish` can
    # re-publish them after a broker lost data (disaster recovery window).
    outbox_retention_hours: float = Field(default=168.0, gt=0)

    admin_api_key: SecretStr | None = Field(default=None)
    # Where a service asks links about a program key it has not heard of yet (the
    # ``apikey.issued`` event may still be on its way), authenticated with the admin key. Unset:
    # keys are known from events only (links itself, which issues them).
    links_internal_url: str | None = None
    # How long links' answer about a key is trusted: a key confirmed by links (or known from
    # events) is asked again after this long, so a revocation reaches this process within it
    # even when the ``apikey.revoked`` event is delayed.
    key_check_ttl_s: float = Field(default=10.0, gt=0)
    # How long "no such key" (or "revoked") from links is remembered: a flood of bad keys asks
    # links once per key per this long at most.
    key_check_negative_ttl_s: float = Field(default=60.0, gt=0)
    # Calls to links per second (and burst) for keys, whatever the traffic: beyond it an unknown
    # key is answered 503 rather than passed on to links.
    key_check_rate_per_s: float = Field(default=20.0, gt=0)
    key_check_timeout_s: float = Field(default=2.0, gt=0)
    # Let webhooks and other outbound calls reach private/loopback addresses (tests, on-prem).
    outbound_allow_private_networks: bool = False
