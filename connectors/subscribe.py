"""Read a topic and write its values as JSON lines (``phenoflow subscribe``).

Reads by partition assignment (no consumer group join, which takes ≈ 23 s on
the embedded broker) unless a group is asked for. Messages of one partition
are written in offset order, so each participant's values stay in order. The
output is exactly the replay format, so ``replay`` reads a dump back.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

import msgspec
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, TopicPartition

from phenoflow.connectors.kafka import clients as kafka_io
from phenoflow.core.config import Settings
from phenoflow.core.errors import UserError

__all__ = ["SubscribeSummary", "dedupe_key", "subscribe"]

#: With ``--group`` and ``--timeout``: the longest wait for the group assignment, seconds.
GROUP_JOIN_WAIT_S = 120.0


@dataclass
class SubscribeSummary:
    """What one `subscribe` call read: messages (per partition), seconds, duplicates dropped."""

    messages: int = 0
    per_partition: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    duplicates: int = 0


class _Identity(msgspec.Struct, forbid_unknown_fields=False):
    event_id: str | None = None
    participant: str | None = None
    hour_start: float | None = None
    day: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


_IDENTITY = msgspec.json.Decoder(_Identity)


def dedupe_key(topic: str, value: bytes) -> bytes:
    """What makes a record the same record: ``event_id`` for events; participant and
    hour/day for features, rhythm and scores; source position for dead letters
    read from Kafka; else the whole value."""
    try:
        r = _IDENTITY.decode(value)
    except msgspec.DecodeError:
        return value
    if r.event_id is not None:
        return r.event_id.encode()
    if topic in ("features.hourly", "rhythm.daily", "scores.daily") and r.participant is not None:
        return f"{r.participant}|{r.hour_start}|{r.day}".encode()
    if topic == "deadletter" and r.offset is not None:
        return f"{r.topic}|{r.partition}|{r.offset}".encode()
    return value


def subscribe(
    settings: Settings,
    topic: str,
    out: BinaryIO,
    *,
    from_beginning: bool = False,
    limit: int | None = None,
    timeout: float | None = None,
    group: str | None = None,
    dedupe: bool = False,
    on_message: Callable[[int], None] | None = None,
) -> SubscribeSummary:
    """Copy values of short topic ``topic`` to ``out``, one JSON object per line.

    Stops after ``limit`` messages, or when no message arrived for ``timeout``
    seconds, or on KeyboardInterrupt; otherwise follows the topic forever.
    ``dedupe`` drops repeats of a record already written (see :func:`dedupe_key`):
    a flow restarted from a recovery snapshot re-sends up to one snapshot
    interval of outputs.
    """
    seen: set[bytes] = set()
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit} must be ≥ 1")
    if timeout is not None and timeout <= 0:
        raise UserError(f"--timeout {timeout} must be > 0 seconds")
    full = settings.topic(topic)
    partitions = kafka_io.topic_partitions(settings, full)
    offset = OFFSET_BEGINNING if from_beginning else OFFSET_END
    # With a group, commit exactly what was handed on: the offset after each message written
    # (or dropped as a duplicate), stored by hand once the output is flushed. librdkafka's
    # automatic store commits its fetch position, which on the embedded broker ran one past
    # the last message (and past 0 on an empty partition), so a resumed group skipped one
    # message per partition.
    c = kafka_io.consumer(settings, group=group, **({"enable.auto.offset.store": False} if group else {}))
    summary = SubscribeSummary()
    t0 = time.monotonic()
    # The idle clock starts at the first fetch answer (a message or a partition's EOF):
    # connecting can take longer than a short --timeout.
    last: float | None = None
    joined: list[float] = []  # group mode: when the partitions were assigned
    try:
        if group is None:
            kafka_io.assign_all(c, full, partitions, offset)
        else:
            c.subscribe([full], on_assign=_on_assign(offset if from_beginning else None, joined))
        while limit is None or summary.messages < limit:
            want = 10_000 if limit is None else min(10_000, limit - summary.messages)
            batch = c.consume(want, timeout=0.2)
            now = time.monotonic()
            got = 0
            handed: dict[int, int] = {}  # partition → offset after the last message handled
            if batch and last is None:
                last = now
            for msg in batch:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    if err.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
                        raise kafka_io.unreachable(settings.bootstrap)
                    raise UserError(f"reading {full} failed: {err.str()} — check the broker")
                value = msg.value() or b""
                if dedupe and (k := dedupe_key(topic, value)) in seen:
                    summary.duplicates += 1
                else:
                    if dedupe:
                        seen.add(k)
                    # Valid JSON has no raw line breaks inside strings, so this keeps one value per line.
                    out.write(value.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n")
                    summary.messages += 1
                    summary.per_partition[msg.partition()] += 1
                    got += 1
                handed[msg.partition()] = msg.offset() + 1
            if group is not None and handed:
                # Flushed first: a committed offset never runs ahead of what reached the output.
                out.flush()
                c.store_offsets(offsets=[TopicPartition(full, part, off) for part, off in handed.items()])
            if got:
                last = now
                if on_message:
                    on_message(got)
            elif timeout is not None and now - _idle_since(last, t0, group, joined) >= timeout:
                break
    except KeyboardInterrupt:
        pass
    finally:
        out.flush()
        c.close()
        summary.seconds = time.monotonic() - t0
    return summary


def _idle_since(last: float | None, t0: float, group: str | None, joined: list[float]) -> float:
    """Start of the idle period for ``--timeout``: the last fetch answer, else connecting
    (10 s of grace; with a group, from the assignment on, since the join alone takes
    ≈ 23 s on the embedded broker, up to :data:`GROUP_JOIN_WAIT_S`)."""
    if last is not None:
        return last
    if group is None:
        return t0 + 10.0
    return joined[0] + 10.0 if joined else t0 + GROUP_JOIN_WAIT_S


def _on_assign(offset: int | None, joined: list[float]) -> Callable[[object, list], None]:
    """Group assignment callback: note when it came; start at ``offset`` unless None (committed)."""

    def on_assign(consumer: object, parts: list) -> None:
        joined.append(time.monotonic())
        if offset is not None:
            for p in parts:
                p.offset = offset
            consumer.assign(parts)  # type: ignore[attr-defined]

    return on_assign
