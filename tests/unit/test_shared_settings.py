"""Settings come from environment variables only."""

from __future__ import annotations

import pydantic
import pytest
from pydantic import SecretStr

from services.links.settings import LinksSettings
from shared.settings import ServiceSettings

_VARS = (
    "SERVICE_NAME",
    "PORT",
    "DATABASE_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_ENABLE_IDEMPOTENCE",
    "KAFKA_FETCH_MAX_WAIT_MS",
    "CONSUMER_RETRY_BACKOFF_S",
    "ADMIN_API_KEY",
    "OUTBOX_RETENTION_HOURS",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_defaults() -> None:
    s = ServiceSettings()
    assert s.kafka_enable_idempotence is True
    assert s.admin_api_key is None
    assert s.port == 8000


@pytest.mark.parametrize(
    ("raw", "expected"), [("false", False), ("0", False), ("true", True), ("1", True)]
)
def test_kafka_enable_idempotence_from_env(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    monkeypatch.setenv("KAFKA_ENABLE_IDEMPOTENCE", raw)
    assert ServiceSettings().kafka_enable_idempotence is expected


def test_typed_values_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("KAFKA_FETCH_MAX_WAIT_MS", "15")
    monkeypatch.setenv("CONSUMER_RETRY_BACKOFF_S", "0.05")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/links")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-0:9092,kafka-1:9092")
    s = ServiceSettings()
    assert s.port == 9001
    assert s.kafka_fetch_max_wait_ms == 15
    assert s.consumer_retry_backoff_s == 0.05
    assert s.database_url == "postgresql://u@db:5432/links"
    assert s.kafka_bootstrap_servers == "kafka-0:9092,kafka-1:9092"


def test_bad_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(pydantic.ValidationError, match="port"):
        ServiceSettings()


def test_admin_key_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_API_KEY", "s3cret-admin-key")
    s = ServiceSettings()
    assert isinstance(s.admin_api_key, SecretStr)
    assert s.admin_api_key.get_secret_value() == "s3cret-admin-key"
    for shown in (repr(s), str(s), s.model_dump_json(), repr(s.model_dump())):
        assert "s3cret-admin-key" not in shown


def test_service_subclass_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LinksSettings().service_name == "links"
    assert LinksSettings().port == 8001
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.setenv("KAFKA_ENABLE_IDEMPOTENCE", "false")
    s = LinksSettings()
    assert s.port == 9100
    assert s.kafka_enable_idempotence is False


def test_outbox_retention_is_a_week_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().outbox_retention_hours == 168.0
    monkeypatch.setenv("OUTBOX_RETENTION_HOURS", "720")
    assert ServiceSettings().outbox_retention_hours == 720.0
    monkeypatch.setenv("OUTBOX_RETENTION_HOURS", "0")
    with pytest.raises(pydantic.ValidationError, match="outbox_retention_hours"):
        ServiceSettings()
