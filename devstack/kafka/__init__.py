"""Apache Kafka for development, tests and failover runs: the broker's jars resolved from Maven
Central into a cache outside the repository (``dist``), and KRaft nodes started from them as
child processes on loopback ports, one combined node or a three-node cluster (``cluster``)."""

from devstack.kafka.cluster import KafkaCluster, KafkaNode
from devstack.kafka.dist import KAFKA_VERSION, KafkaDistribution, KafkaSetupError

__all__ = ["KAFKA_VERSION", "KafkaCluster", "KafkaDistribution", "KafkaNode", "KafkaSetupError"]
