"""Connector-side helpers the flows share: decoding Kafka messages, dead letters, sink messages.

Pure wiring: no science here. Every message either becomes a contract event or a
dead letter with its original bytes and a reason; nothing is dropped.
"""

from __future__ import annotations

from typing import Any, Union

from bytewax.connectors.kafka import KafkaError, KafkaSinkMessage, KafkaSourceMessage

from phenoflow import metrics
from phenoflow.config import Settings
from phenoflow.contract import DeadLetter, Event, dead_letter, decode, encode

Decoded = Union[Event, DeadLetter]


def decoder(settings: Settings):
    """A mapper KafkaSourceMessage | KafkaError → event or DeadLetter (never raises)."""

    def _decode(msg: Union[KafkaSourceMessage, KafkaError]) -> Decoded:
        if isinstance(msg, KafkaError):
            src = msg.msg
            short = settings.short(src.topic or "")
            metrics.DEAD_LETTERS.labels(topic=short, reason="kafka").inc()
            return dead_letter(short, src.value or b"", f"{short}: Kafka error {msg.err.str()}",
                               key=src.key, partition=src.partition, offset=src.offset)
        short = settings.short(msg.topic or "")
        metrics.MESSAGES_IN.labels(topic=short).inc()
        out = decode(short, msg.key, msg.value, partition=msg.partition, offset=msg.offset,
                     max_bytes=settings.max_message_bytes)
        if isinstance(out, DeadLetter):
            metrics.DEAD_LETTERS.labels(topic=short, reason="contract").inc()
        return out

    return _decode


def late_letter(short_topic: str, event: Event, reason: str) -> DeadLetter:
    """Dead letter for an event that arrived after its window closed (reason ``late``).

    The event passed the contract, so its canonical encoding carries the same
    information as the original bytes.
    """
    metrics.LATE_EVENTS.labels(topic=short_topic).inc()
    metrics.DEAD_LETTERS.labels(topic=short_topic, reason="late").inc()
    return dead_letter(short_topic, encode(event), f"late: {reason}",
                       key=event.participant.encode())


def to_sink(settings: Settings, short_topic: str):
    """A mapper contract value → KafkaSinkMessage on ``short_topic``, keyed by participant."""
    full = settings.topic(short_topic)

    def _to_sink(value: Any) -> KafkaSinkMessage:
        metrics.MESSAGES_OUT.labels(topic=short_topic).inc()
        key = value.participant.encode() if isinstance(value, Event) else (
            value.key.encode() if isinstance(value, DeadLetter) and value.key else None)
        return KafkaSinkMessage(key=key, value=encode(value), topic=full)

    return _to_sink
