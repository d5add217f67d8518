"""Bytewax source: Kafka partition *i* of every input topic, read by one consumer.

Why not Bytewax's ``KafkaSource``: it opens one consumer per topic-partition
(24 for the six raw topics × 4 partitions), wraps every message in a
``KafkaSourceMessage`` dataclass and parses librdkafka statistics each second.
Reading the 382 k messages of the hourly benchmark's 20 × 28 cohort to the
end took 1.5–1.9 s of CPU that way, more than the whole plain consumer loop,
against 0.4 s with this source (benchmarks/README.md).

Here a *source partition* is one partition index across all input topics
(``"3"`` = partition 3 of every topic that has one). The contract keys every
topic by participant with the same partitioner, so a source partition holds
all streams of its participants, and one consumer (assigned, no group)
reads them together. Items are plain tuples (:data:`RawMessage`); consumer
errors are :class:`SourceError` items so the flow counts and logs them
instead of stopping (librdkafka reconnects by itself).

Offsets live in the recovery snapshot, ``{topic: next offset}``, as with
Bytewax's source: without recovery a restart reads from the beginning. With
``tail=False`` a partition ends once every assigned topic-partition has
signalled end-of-partition (librdkafka ``enable.partition.eof``) since its
last message — the signal "read to the end" relies on, because the embedded
broker's ListOffsets answer lags (see ``connectors/broker.py``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Union

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from phenoflow.core.telemetry import CONSUMER_LAG

__all__ = [
    "RawMessage", "METADATA_TIMEOUT_S", "METADATA_WAIT_S", "UNTIL_END_FETCH_WAIT_MS", "STATS_INTERVAL_MS",
    "SourceError", "consumer_lags", "PartitionGroupSource"
]

log = logging.getLogger("phenoflow.source")

#: (full topic name, key, value, Kafka partition, offset) of one consumed message.
RawMessage = tuple[str, Optional[bytes], Optional[bytes], int, int]

#: Seconds one metadata request may take, and how long a flow waits for a broker that is down
#: when it starts or resumes (as a running flow does: librdkafka reconnects by itself).
METADATA_TIMEOUT_S = 10.0
METADATA_WAIT_S = 600.0
#: librdkafka ``fetch.wait.max.ms`` when reading to the end (``tail=False``).
UNTIL_END_FETCH_WAIT_MS = 50
#: How often librdkafka reports partition offsets, from which the consumer-lag gauge is set (ms).
STATS_INTERVAL_MS = 5000


@dataclass(frozen=True)
class SourceError:
    """A consumer error (broker unreachable, …); it carries no message."""

    topic: str
    code: str
    text: str


def _partition_counts(config: dict[str, str], topics: Iterable[str]) -> dict[str, int]:
    """Partition count per topic; waits out a broker that is down (up to ``METADATA_WAIT_S``)."""
    deadline = time.monotonic() + METADATA_WAIT_S
    while True:
        try:
            meta = AdminClient(config).list_topics(timeout=METADATA_TIMEOUT_S)
            break
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka broker at {config.get('bootstrap.servers')} did not answer for "
                                   f"{METADATA_WAIT_S:.0f} s ({exc.args[0].str()}) — start it or fix "
                                   "--bootstrap") from None
            log.warning("Kafka broker did not answer a metadata request (%s) — retrying", exc.args[0].str())
    counts: dict[str, int] = {}
    for topic in topics:
        tm = meta.topics.get(topic)
        if tm is None or tm.error is not None:
            reason = tm.error.str() if tm is not None and tm.error is not None else "not found"
            raise RuntimeError(f"cannot read Kafka topic {topic!r}: {reason} — create it "
                               "(`phenoflow broker` or `ensure_topics`) or fix the topic prefix")
        counts[topic] = len(tm.partitions)
    return counts


def consumer_lags(stats: dict[str, Any], offsets: dict[str, int], index: int) -> dict[str, int]:
    """Lag of each topic's partition ``index``: broker's last stable offset minus the next offset to read.

    ``offsets`` holds the next offset per topic; one below the log start (nothing read
    yet, or trimmed by retention) counts from the log start.
    Partitions librdkafka does not know the end of yet (offset −1001) are left out.
    """
    lags: dict[str, int] = {}
    for topic, nxt in offsets.items():
        part = stats.get("topics", {}).get(topic, {}).get("partitions", {}).get(str(index))
        if not part or part.get("ls_offset", -1) < 0:
            continue
        start = max(nxt, part.get("lo_offset", 0), 0)
        lags[topic] = max(part["ls_offset"] - start, 0)
    return lags


class _GroupPartition(StatefulSourcePartition[Union[RawMessage, SourceError], dict[str, int]]):
    def __init__(self, config: dict[str, object], topics: list[str], index: int,
                 resume: dict[str, int] | None, batch_size: int, tail: bool) -> None:
        # Offset 0, not OFFSET_BEGINNING: librdkafka resolves a logical offset with a
        # ListOffsets round that delayed the first message by 0.5 s; a log whose start was
        # trimmed by retention resets to its earliest offset (auto.offset.reset below).
        self._offsets = {t: 0 for t in topics}
        if resume:
            self._offsets.update({t: o for t, o in resume.items() if t in self._offsets})
        self._index = index
        self._consumer = Consumer({**config, "stats_cb": self._stats})
        self._consumer.assign([TopicPartition(t, index, o) for t, o in self._offsets.items()])
        self._batch_size = batch_size
        self._tail = tail
        self._at_end: set[str] = set()
        self._done = not topics

    def next_batch(self) -> list[Union[RawMessage, SourceError]]:
        if self._done:
            raise StopIteration()
        out: list[Union[RawMessage, SourceError]] = []
        append = out.append
        offsets, at_end = self._offsets, self._at_end
        for m in self._consumer.consume(self._batch_size, 0.001):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.topic())
                    CONSUMER_LAG.labels(topic=m.topic(), partition=str(self._index)).set(0)
                    if not self._tail and len(at_end) == len(offsets):
                        self._done = True  # the StopIteration comes next call, after this batch
                else:
                    append(SourceError(m.topic() or "", err.name(), err.str()))
                continue
            topic, offset = m.topic(), m.offset()
            if at_end:
                at_end.discard(topic)
            offsets[topic] = offset + 1
            append((topic, m.key(), m.value(), m.partition(), offset))
        return out

    def _stats(self, stats_json: str) -> None:
        """librdkafka statistics → consumer lag per topic-partition (last stable offset − next offset)."""
        for topic, lag in consumer_lags(json.loads(stats_json), self._offsets, self._index).items():
            CONSUMER_LAG.labels(topic=topic, partition=str(self._index)).set(lag)

    def snapshot(self) -> dict[str, int]:
        return dict(self._offsets)

    def close(self) -> None:
        self._consumer.close()


class PartitionGroupSource(FixedPartitionedSource[Union[RawMessage, SourceError], dict[str, int]]):
    """Read ``topics`` from ``bootstrap``; source partition *i* = Kafka partition *i* of each topic.

    ``tail=False`` stops at the end of every partition (``run --until-end``);
    ``batch_size`` is the most messages one poll returns (per source partition).
    ``config`` is extra librdkafka settings (security, …).
    """

    def __init__(self, bootstrap: str, topics: Iterable[str], *, tail: bool = True,
                 batch_size: int = 1000, config: dict[str, str] | None = None) -> None:
        self.topics = list(topics)
        self.tail = tail
        self.batch_size = batch_size
        self.config = {**(config or {}), "bootstrap.servers": bootstrap}
        self._counts: dict[str, int] | None = None

    def _partitions(self) -> dict[str, int]:
        # Asked once per process: list_parts runs before build_part on every worker.
        if self._counts is None:
            self._counts = _partition_counts(self.config, self.topics)
        return self._counts

    def list_parts(self) -> list[str]:
        """Bytewax hook: one part per partition index (the largest partition count of the input topics)."""
        return [str(i) for i in range(max(self._partitions().values(), default=0))]

    def build_part(self, step_id: str, for_part: str, resume_state: dict[str, int] | None) -> _GroupPartition:
        """Bytewax hook: the reader of partition ``for_part`` of every input topic, resumed at ``resume_state`` offsets."""
        index = int(for_part)
        counts = self._partitions()
        topics = [t for t in self.topics if index < counts[t]]
        config = {
            # Reading to the end: the fetch that finds a partition's end waits this long for
            # more data before librdkafka reports end-of-partition (default 500 ms). Following
            # the topics keeps the default, so an idle flow does not poll the broker busily.
            **({} if self.tail else {"fetch.wait.max.ms": UNTIL_END_FETCH_WAIT_MS}),
            **self.config,
            # Offsets live in the recovery snapshots, not in a consumer group.
            "group.id": "phenoflow-unused",
            "enable.auto.commit": "false",
            "enable.partition.eof": str(not self.tail).lower(),
            # A resume offset retention has deleted reads from the log start, never skips to the end.
            "auto.offset.reset": "earliest",
            "statistics.interval.ms": STATS_INTERVAL_MS,
        }
        return _GroupPartition(config, topics, index, resume_state, self.batch_size, self.tail)
