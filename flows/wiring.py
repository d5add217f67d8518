"""Connector-side helpers the flows share: decoding Kafka messages, dead letters, sink messages.

Pure wiring: no science here. Every message either becomes a contract event or a
dead letter with its original bytes and a reason; nothing is dropped.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Union

from bytewax.connectors.kafka import KafkaSinkMessage

from phenoflow.connectors.kafka.source import RawMessage, SourceError
from phenoflow.core import telemetry as metrics
from phenoflow.core.config import Settings
from phenoflow.core.contract import DeadLetter, Event, dead_letter, decode, encode, event_time

__all__ = ["Keyed", "decoder", "late_letter", "to_sink"]

#: A decoded item keyed for the stateful steps: (participant, event), or ("", dead letter).
Keyed = tuple[str, Union[Event, DeadLetter]]
log = logging.getLogger("phenoflow.flow")


def decoder(settings: Settings) -> Callable[[list[Union[RawMessage, SourceError]]], list[Keyed]]:
    """A batch mapper: source items → ``(participant, event)`` or ``("", DeadLetter)``. Never raises.

    Works per Bytewax batch (``op.flat_map_batch``): one Python call and one
    metric update per topic per batch, not per message. Source errors carry
    no message: they are counted and logged (librdkafka reconnects by itself).
    """
    # Per full topic name: short name and its metric children, looked up once, not per message.
    per_topic: dict[str, tuple[str, Any, Any]] = {}
    max_bytes = settings.max_message_bytes

    def lookup(full: str) -> tuple[str, Any, Any]:
        hit = per_topic.get(full)
        if hit is None:
            short = settings.short(full)
            hit = per_topic[full] = (short, metrics.MESSAGES_IN.labels(topic=short),
                                     metrics.DEAD_LETTERS.labels(topic=short, reason="contract"))
        return hit

    def _decode(batch: list[Union[RawMessage, SourceError]]) -> list[Keyed]:
        out: list[Keyed] = []
        seen: dict[str, int] = {}
        for item in batch:
            if isinstance(item, SourceError):
                short = settings.short(item.topic)
                metrics.KAFKA_ERRORS.labels(topic=short, code=item.code).inc()
                log.warning("Kafka consumer error on %s: %s — retrying", short or "?", item.text)
                continue
            full, key, value, partition, offset = item
            seen[full] = seen.get(full, 0) + 1
            ev = decode(lookup(full)[0], key, value, partition=partition, offset=offset, max_bytes=max_bytes)
            if isinstance(ev, DeadLetter):
                lookup(full)[2].inc()
                out.append(("", ev))
            else:
                out.append((ev.participant, ev))
        for full, n in seen.items():
            lookup(full)[1].inc(n)
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


#: Output topic of each stage → length of the period its event time starts (s), so the lag
#: is measured from the period's end: an hour, a local day.
_STAGE_OUTPUTS = {"features.hourly": 3600.0, "rhythm.daily": 86400.0, "scores.daily": 86400.0}


def to_sink(settings: Settings, short_topic: str):
    """A mapper contract value → KafkaSinkMessage on ``short_topic``, keyed by participant."""
    full = settings.topic(short_topic)

    lag = metrics.EVENT_TIME_LAG.labels(stage=short_topic) if short_topic in _STAGE_OUTPUTS else None

    def _to_sink(value: Any) -> KafkaSinkMessage:
        metrics.MESSAGES_OUT.labels(topic=short_topic).inc()
        if lag is not None:
            t = event_time(value)
            if t is not None:
                lag.set(time.time() - t - _STAGE_OUTPUTS[short_topic])
        key = value.participant.encode() if isinstance(value, Event) else (
            value.key.encode() if isinstance(value, DeadLetter) and value.key else None)
        return KafkaSinkMessage(key=key, value=encode(value), topic=full)

    return _to_sink
