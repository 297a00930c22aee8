"""Production Kafka defaults, the development brokers' overrides, and the launcher's checks."""

from __future__ import annotations

import base64

import pytest

from devstack.kafka import dist
from devstack.kafka.node import new_cluster_id
from devstack.profiles import broker_env, broker_kind, kafka_nodes, settings_overrides
from shared.messaging.producer import make_producer, topic_configs
from shared.settings import ServiceSettings

_KAFKA_VARS = (
    "KAFKA_ENABLE_IDEMPOTENCE",
    "KAFKA_FETCH_MAX_WAIT_MS",
    "KAFKA_TOPIC_PARTITIONS",
    "KAFKA_REPLICATION_FACTOR",
    "KAFKA_MIN_INSYNC_REPLICAS",
    "KAFKA_COMPRESSION_TYPE",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _KAFKA_VARS:
        monkeypatch.delenv(name, raising=False)


def test_the_defaults_are_production_kafka() -> None:
    s = ServiceSettings()
    assert s.kafka_enable_idempotence is True
    assert s.kafka_fetch_max_wait_ms == 500
    assert (s.kafka_topic_partitions, s.kafka_replication_factor) == (6, 3)
    assert s.kafka_min_insync_replicas == 2
    assert s.kafka_compression_type == "gzip"
    assert topic_configs(s) == {
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
    }


def test_min_insync_replicas_never_exceeds_the_replicas() -> None:
    one_node = ServiceSettings(**settings_overrides("kafka"))
    assert one_node.kafka_replication_factor == 1
    assert topic_configs(one_node)["min.insync.replicas"] == "1"


def test_tansu_gets_its_workarounds_and_only_tansu() -> None:
    tansu = ServiceSettings(**settings_overrides("tansu"))
    assert tansu.kafka_enable_idempotence is False
    assert tansu.kafka_fetch_max_wait_ms == 50  # short: Tansu does not answer a long poll early
    assert tansu.kafka_topic_partitions == 4
    for kind in ("kafka", "kafka-cluster"):
        env = broker_env(broker_kind(kind))
        assert "KAFKA_ENABLE_IDEMPOTENCE" not in env
        assert "KAFKA_FETCH_MAX_WAIT_MS" not in env
    assert broker_env("kafka-cluster") == {}  # the cluster runs the production defaults
    assert (kafka_nodes("kafka"), kafka_nodes("kafka-cluster")) == (1, 3)


def test_an_unknown_broker_is_refused_by_name() -> None:
    assert broker_kind(None) == "tansu"
    assert broker_kind(" Kafka ") == "kafka"
    with pytest.raises(ValueError, match="redpanda"):
        broker_kind("redpanda")


@pytest.mark.parametrize(("setting", "expected"), [("gzip", "gzip"), ("none", None)])
async def test_the_producer_compresses_as_configured(setting: str, expected: str | None) -> None:
    producer = make_producer(ServiceSettings(kafka_compression_type=setting))
    assert producer._compression_type == expected
    assert producer.client._client_id == "service"


def test_cluster_ids_are_16_random_bytes_in_base64url() -> None:
    ids = {new_cluster_id() for _ in range(5)}
    assert len(ids) == 5
    for cluster_id in ids:
        assert len(cluster_id) == 22 and "=" not in cluster_id
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_missing_maven_and_java_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dist.shutil, "which", lambda _: None)
    with pytest.raises(dist.KafkaSetupError, match="apt-get install maven"):
        dist.find_maven()
    monkeypatch.delenv("KAFKA_JAVA", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(dist.KafkaSetupError, match="Java 17"):
        dist.find_java()
