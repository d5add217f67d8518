"""Kafka clients for the CLI tools (admin, replay, subscribe): confluent-kafka.

One client library for the tools. The design card named kafka-python, but
against the embedded broker kafka-python stays far below the replay goal of
≥ 100,000 msg/s while confluent-kafka (librdkafka, already a Bytewax
dependency) is well above it: ``benchmarks/bench_replay.py`` measures both in
one run on the same messages, figures in ``benchmarks/README.md``.

Producers use the ``murmur2_random`` partitioner, Java Kafka's default, so a
participant lands on the same partition whichever client wrote it.
"""

from __future__ import annotations

import logging
from typing import Iterable

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from phenoflow.core.config import Settings
from phenoflow.core.errors import UserError

__all__ = [
    "PRODUCER_DEFAULTS", "TOPIC_CONFIG", "unreachable", "admin", "list_topics", "ensure_topics",
    "producer", "consumer", "topic_partitions", "assign_all"
]

log = logging.getLogger("phenoflow.kafka")

#: The tools report broker trouble themselves (one line); silence librdkafka's own log.
_QUIET = {"log_level": 0}

PRODUCER_DEFAULTS = {
    "partitioner": "murmur2_random",
    "linger.ms": 20,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "message.max.bytes": 8 << 20,
    "enable.idempotence": False,
}

#: Topic configs set explicitly: some clients (Quix Streams) read them back.
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1"}


def unreachable(bootstrap: str) -> UserError:
    """The one-line error for a broker that does not answer."""
    return UserError(
        f"no Kafka broker answers at {bootstrap} — start one with `phenoflow broker` "
        "or point --bootstrap (or PHENOFLOW_BOOTSTRAP) at your cluster"
    )


def _client(kind: type, conf: dict[str, object]) -> object:
    """``kind(conf)``; librdkafka's refusal of a setting (kafka_options) as one UserError line."""
    try:
        return kind(conf)
    except KafkaException as exc:
        err = exc.args[0]
        reason = err.str() if isinstance(err, KafkaError) else str(err)
        raise UserError(f"Kafka client setting rejected: {reason} — fix kafka_options "
                        "(PHENOFLOW_KAFKA_OPTIONS or the config file)") from None


def admin(settings: Settings) -> AdminClient:
    """An admin client with the settings' librdkafka configuration."""
    return _client(AdminClient, {**settings.kafka_config(), **_QUIET})


def list_topics(settings: Settings, timeout: float = 5.0) -> dict[str, int]:
    """Topic name → partition count; raises UserError when the broker does not answer."""
    client = admin(settings)
    try:
        meta = client.list_topics(timeout=timeout)
    except KafkaException:
        raise unreachable(settings.bootstrap) from None
    return {name: len(t.partitions) for name, t in meta.topics.items() if not t.error}


def ensure_topics(settings: Settings, shorts: Iterable[str], timeout: float = 10.0) -> list[str]:
    """Create the contract topics that do not exist yet; return the names created.

    Topics get ``settings.partitions`` partitions (keyed by participant).
    """
    existing = list_topics(settings, timeout)
    wanted = [settings.topic(s) for s in shorts]
    missing = [t for t in wanted if t not in existing]
    if not missing:
        return []
    client = admin(settings)  # must outlive the futures below
    futures = client.create_topics(
        [NewTopic(t, num_partitions=settings.partitions, replication_factor=1, config=TOPIC_CONFIG)
         for t in missing],
        request_timeout=timeout,
    )
    created = []
    for topic, fut in futures.items():
        try:
            fut.result(timeout=timeout)
            created.append(topic)
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise UserError(f"could not create topic {topic}: {err} — check the broker's permissions") from None
    return created


def producer(settings: Settings, **extra: object) -> Producer:
    """A producer: the settings' librdkafka configuration over :data:`PRODUCER_DEFAULTS`."""
    return _client(Producer, {**settings.kafka_config(), **PRODUCER_DEFAULTS, **_QUIET, **extra})


def consumer(settings: Settings, group: str | None = None, **extra: object) -> Consumer:
    """A consumer; without ``group`` it is meant for ``assign`` (no group join, no commits)."""
    conf: dict[str, object] = {
        **settings.kafka_config(),
        **_QUIET,
        "group.id": group or "phenoflow-tools",
        "enable.auto.commit": group is not None,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    conf.update(extra)
    return _client(Consumer, conf)


def topic_partitions(settings: Settings, topic: str, timeout: float = 5.0) -> list[int]:
    """Partition ids of ``topic``; UserError when it does not exist."""
    parts = list_topics(settings, timeout)
    if topic not in parts:
        raise UserError(
            f"topic {topic} does not exist on {settings.bootstrap} — check the name "
            f"(short names such as events.anomaly get the prefix {settings.topic_prefix!r}) "
            "or run the stage that writes it"
        )
    return list(range(parts[topic]))


def assign_all(c: Consumer, topic: str, partitions: list[int], offset: int) -> None:
    """Assign ``partitions`` of ``topic`` to ``c``, each starting at ``offset``."""
    c.assign([TopicPartition(topic, p, offset) for p in partitions])
