"""deploy/components/kafka-topics: a Strimzi KafkaTopic for every topic in the event contracts
and for its `.dlq` twin, with the settings the delivery guarantees depend on (replication 3,
min.insync.replicas 2, unclean leader election off) and the overlay's partition count.

kubernetes-validate knows no Strimzi CRD, so the structure is checked here by hand: only the
fields KafkaTopic v1beta2 defines, with the types the CRD gives them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared.contracts import TOPICS, dlq_topic
from shared.settings import ServiceSettings
from tests.deploy.test_kustomize import of_kind

# Overlays that manage their topics with Strimzi (dev leaves topics to the migrations Job).
TOPIC_OVERLAYS = ("overlays/prod",)
API_VERSION = "kafka.strimzi.io/v1beta2"
SPEC_FIELDS = {"topicName", "partitions", "replicas", "config"}
# A DNS-1123 subdomain, what Kubernetes allows as an object name.
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Kafka's own rule for topic names.
KAFKA_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
DAY_MS = 24 * 3600 * 1000

Obj = dict[str, Any]


def structure_errors(obj: Obj, namespace: str) -> list[str]:
    """What is wrong with one KafkaTopic object, as the CRD and this platform see it."""
    errors = []
    name = obj.get("metadata", {}).get("name", "?")
    if obj.get("apiVersion") != API_VERSION:
        errors.append(f"{name}: apiVersion {obj.get('apiVersion')!r}")
    if set(obj) - {"apiVersion", "kind", "metadata", "spec"}:
        errors.append(f"{name}: unknown top-level fields {set(obj) - {'apiVersion', 'kind'}}")
    meta = obj.get("metadata", {})
    if not K8S_NAME.match(name) or len(name) > 253:
        errors.append(f"{name}: not a valid Kubernetes object name")
    if meta.get("namespace") != namespace:
        errors.append(f"{name}: namespace {meta.get('namespace')!r}, expected {namespace!r}")
    if not meta.get("labels", {}).get("strimzi.io/cluster"):
        errors.append(f"{name}: no strimzi.io/cluster label, the Topic Operator would ignore it")
    spec = obj.get("spec", {})
    if set(spec) - SPEC_FIELDS:
        errors.append(f"{name}: unknown spec fields {sorted(set(spec) - SPEC_FIELDS)}")
    if not KAFKA_TOPIC.match(str(spec.get("topicName", ""))):
        errors.append(f"{name}: topicName {spec.get('topicName')!r}")
    for field in ("partitions", "replicas"):
        value = spec.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors.append(f"{name}: spec.{field} must be a positive integer, not {value!r}")
    config = spec.get("config", {})
    if not isinstance(config, dict) or not all(
        isinstance(v, str | int | bool) for v in config.values()
    ):
        errors.append(f"{name}: spec.config must map names to scalars")
    return errors


def topics(target: str) -> dict[str, Obj]:
    """Topic name (spec.topicName) -> its KafkaTopic."""
    found = of_kind(target, "KafkaTopic").values()
    by_topic = {t["spec"].get("topicName", t["metadata"]["name"]): t for t in found}
    assert len(by_topic) == len(found), "two KafkaTopics name the same topic"
    return by_topic


def config_map(target: str) -> dict[str, str]:
    (cm,) = of_kind(target, "ConfigMap").values()
    return cm["data"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("target", TOPIC_OVERLAYS)
def test_every_contract_topic_and_its_dlq_has_a_kafka_topic(target: str) -> None:
    declared = set(topics(target))
    wanted = {t for topic in TOPICS for t in (topic, dlq_topic(topic))}
    assert wanted - declared == set(), "topics in shared/contracts without a KafkaTopic"
    assert declared - wanted == set(), "KafkaTopics for topics no contract publishes"


@pytest.mark.parametrize("target", TOPIC_OVERLAYS)
def test_kafka_topics_are_well_formed(target: str) -> None:
    (namespace,) = of_kind(target, "Namespace")
    errors = [e for t in topics(target).values() for e in structure_errors(t, namespace)]
    assert not errors, "\n".join(errors)


def test_structure_check_rejects_mistakes() -> None:
    """The hand-written check must catch what a CRD schema would, or the test above proves
    nothing."""
    (namespace,) = of_kind("overlays/prod", "Namespace")
    good = topics("overlays/prod")["referral.converted"]
    assert structure_errors(good, namespace) == []
    mistakes: list[Obj] = [
        {**good, "apiVersion": "kafka.strimzi.io/v1alpha1"},
        {**good, "spec": {**good["spec"], "partition": 6}},
        {**good, "spec": {**good["spec"], "replicas": "3"}},
        {**good, "metadata": {**good["metadata"], "name": "referral.signed_up"}},
        {**good, "metadata": {**good["metadata"], "labels": {}}},
    ]
    for bad in mistakes:
        assert structure_errors(bad, namespace), bad


@pytest.mark.parametrize("target", TOPIC_OVERLAYS)
def test_topics_match_what_the_services_are_configured_with(target: str) -> None:
    """The services create missing topics with KAFKA_TOPIC_PARTITIONS and
    KAFKA_REPLICATION_FACTOR, and KEDA scales up to the partition count: the KafkaTopics agree."""
    data = config_map(target)
    for name, topic in topics(target).items():
        assert topic["spec"]["partitions"] == int(data["KAFKA_TOPIC_PARTITIONS"]), name
        assert topic["spec"]["replicas"] == int(data["KAFKA_REPLICATION_FACTOR"]), name


@pytest.mark.parametrize("target", TOPIC_OVERLAYS)
def test_topic_settings_keep_acknowledged_events(target: str) -> None:
    """acks=all is only as strong as min.insync.replicas: 2 of 3 replicas, so one broker can be
    lost (or restarted) while producers go on, and no out-of-sync replica ever becomes leader."""
    for name, topic in topics(target).items():
        spec, config = topic["spec"], topic["spec"]["config"]
        assert spec["replicas"] >= 3, name
        assert int(config["min.insync.replicas"]) == 2, name
        assert int(config["min.insync.replicas"]) < spec["replicas"], (
            f"{name}: with min.insync.replicas = replicas one broker down stops every producer"
        )
        assert config["unclean.leader.election.enable"] is False, name
        assert config["cleanup.policy"] == "delete", f"{name}: compaction would drop events"


@pytest.mark.parametrize("target", TOPIC_OVERLAYS)
def test_retention(target: str) -> None:
    """Events stay at least as long as the outbox keeps sent rows (the replay window), dead
    letters longer: they wait for a person."""
    outbox_ms = ServiceSettings().outbox_retention_hours * 3600 * 1000
    declared = topics(target)
    for topic in TOPICS:
        events = int(declared[topic]["spec"]["config"]["retention.ms"])
        dead = int(declared[dlq_topic(topic)]["spec"]["config"]["retention.ms"])
        assert events >= outbox_ms, topic
        assert dead > events and dead >= 14 * DAY_MS, dlq_topic(topic)
