"""A Kafka sink for Bytewax that never loses a message silently.

Bytewax's own ``KafkaSink`` flushes after each batch but ignores delivery
reports, so a rejected message (too large, unknown topic, broker gone past
the retry budget) would vanish. This sink counts delivery reports and raises
when one failed, which stops the worker: with recovery the flow resumes from
its last snapshot and re-sends (at-least-once), without it the operator sees
the error. While the broker is unreachable it waits with backoff, logging one
line per attempt, instead of failing at once or spinning.
"""

from __future__ import annotations

import logging
import time
from typing import List

from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import Producer

__all__ = ["DELIVERY_TIMEOUT_MS", "DeliveringKafkaSink"]

log = logging.getLogger("phenoflow.sink")

#: librdkafka retries a failed send for this long before reporting it, ms.
DELIVERY_TIMEOUT_MS = 300_000


class _Partition(StatelessSinkPartition[KafkaSinkMessage]):
    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._failed: list[str] = []

    def _on_delivery(self, err: object, _msg: object) -> None:
        if err is not None:
            self._failed.append(str(err))

    def write_batch(self, items: List[KafkaSinkMessage]) -> None:
        for msg in items:
            while True:
                try:
                    self._producer.produce(msg.topic, msg.value, key=msg.key, headers=msg.headers or None,
                                           on_delivery=self._on_delivery)
                    break
                except BufferError:
                    self._producer.poll(0.1)
            self._producer.poll(0)
        self._flush()

    def _flush(self) -> None:
        delay = 1.0
        while self._producer.flush(delay * 5) > 0:
            log.warning("Kafka broker not accepting writes; %d messages waiting, retrying in %.0f s",
                        len(self._producer), delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
        if self._failed:
            first, n = self._failed[0], len(self._failed)
            self._failed.clear()
            raise RuntimeError(f"{n} messages were not delivered to Kafka (first error: {first}); "
                               "stopping so nothing is lost — fix the broker and restart (with --recovery "
                               "the flow resumes from its last snapshot)")

    def close(self) -> None:
        self._flush()


class DeliveringKafkaSink(DynamicSink[KafkaSinkMessage]):
    """Write ``KafkaSinkMessage`` items (each naming its topic); fail loudly on delivery errors."""

    def __init__(self, config: dict[str, str]) -> None:
        self._config = dict(config)

    def build(self, _step_id: str, _worker_index: int, _worker_count: int) -> _Partition:
        """Bytewax hook: one idempotent producer per worker."""
        conf = {"linger.ms": 5, "delivery.timeout.ms": DELIVERY_TIMEOUT_MS,
                "partitioner": "murmur2_random", **self._config}
        return _Partition(Producer(conf))

