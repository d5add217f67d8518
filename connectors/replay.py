"""Replay a cohort directory onto the Kafka topics, merged in event-time order.

Each file is read as a stream and the streams are merged by event time
(``heapq.merge``), so a year of history never has to fit in memory; a file is
assumed to be in time order, as ``simulate`` and ``subscribe --out`` write it
(a line out of order in its file keeps its place, and the flows' lateness
policy decides what happens to it). Every line is produced unchanged, keyed by
participant. Lines that fail the contract are still sent (the flows route them
to the dead-letter topic) and are counted in the summary.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import msgspec

from phenoflow.connectors.cohort import CohortFile, cohort_files, read_lines
from phenoflow.connectors.kafka import clients as kafka_io
from phenoflow.connectors.zones import ZoneOffsets, localize, read_participant_zones
from phenoflow.core.config import Settings
from phenoflow.core.contract import (
    RAW_TOPICS,
    Accelerometer,
    DeadLetter,
    decode,
    encode,
    event_time,
)
from phenoflow.core.errors import UserError

__all__ = ["ReplayItem", "merged", "ReplaySummary", "replay"]


class _Head(msgspec.Struct, forbid_unknown_fields=False):
    """The fields replay needs for keying and ordering, of any topic value."""

    participant: str | None = None
    ts: float | list[float] | None = None
    hour_start: float | None = None
    day: str | None = None


_HEAD = msgspec.json.Decoder(_Head)


class ReplayItem(NamedTuple):
    """One line to produce; tuples compare by (ts, file index, line number) in the merge."""

    ts: float
    file_index: int
    line_no: int
    topic: str
    key: bytes | None
    value: bytes
    valid: bool
    samples: int


def _items(f: CohortFile, file_index: int, check: bool,
           zones: dict[str, ZoneOffsets] | None = None) -> Iterator[ReplayItem]:
    last_ts = float("-inf")
    topic = f.topic
    for seq, line in enumerate(read_lines(f)):
        ts: float | None = None
        key: bytes | None = None
        valid, samples = True, 0
        event = decode(topic, None, line) if check else None
        zone = None
        if zones and topic in RAW_TOPICS and event is not None and not isinstance(event, DeadLetter):
            zone = zones.get(event.participant)
        if zone is not None and event.utc_offset_min is None:  # type: ignore[union-attr]  # zone is set only for a decoded event
            # participants.csv names the zone: the event gets its offset at its own time.
            for part in localize(event, zone):  # type: ignore[arg-type]  # as above
                n = len(part.ts) if isinstance(part, Accelerometer) else 0
                ts = part.ts[0] if isinstance(part, Accelerometer) else part.ts  # type: ignore[attr-defined]  # raw types have ts
                last_ts = ts
                yield ReplayItem(ts, file_index, seq, topic, part.participant.encode(), encode(part), True, n)
            continue
        if event is not None and not isinstance(event, DeadLetter):
            # The contract decode already gives participant and event time; no second parse.
            key = event.participant.encode()
            if isinstance(event, Accelerometer):
                ts, samples = event.ts[0], len(event.ts)
            else:
                ts = event_time(event)
        else:
            valid = event is None
            try:
                head = _HEAD.decode(line)
                ts = event_time(head)
                key = head.participant.encode() if head.participant else None
            except (msgspec.DecodeError, UnicodeError):
                pass
        if ts is None:
            ts = last_ts
        else:
            last_ts = ts
        yield ReplayItem(ts, file_index, seq, topic, key, line, valid, samples)


def merged(files: list[CohortFile], check: bool = True,
           zones: dict[str, ZoneOffsets] | None = None) -> Iterator[ReplayItem]:
    """Items of all files in event-time order (ties: file order, then line order).

    ``zones`` (participant → zone, from participants.csv) gives events without
    ``utc_offset_min`` their participant's offset (re-encoded; needs ``check``).
    """
    return heapq.merge(*(_items(f, i, check, zones) for i, f in enumerate(files)))


@dataclass
class ReplaySummary:
    """What a replay sent, per short topic."""

    sent: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    accelerometer_samples: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Messages sent, all topics together."""
        return sum(self.sent.values())

    @property
    def rate(self) -> float:
        """Messages per second of wall time."""
        return self.total / self.seconds if self.seconds > 0 else float("nan")


def replay(
    directory: Path,
    settings: Settings,
    *,
    speed: float = 0.0,
    topics: set[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Produce every topic file of ``directory`` to its topic; return the counts.

    ``speed`` 0 sends as fast as possible; ``speed`` X paces the replay at X times
    real time by event time. ``progress`` is called with the number of bytes of
    input consumed since the previous call (for a progress bar).
    """
    if speed < 0:
        raise UserError(f"--speed {speed} is negative — use 0 (as fast as possible) or a factor > 0")
    files = cohort_files(directory, topics)
    zones = read_participant_zones(directory)
    kafka_io.ensure_topics(settings, [f.topic for f in files])
    # Only failed deliveries call back: a Python callback per message costs ~10 % of the rate.
    prod = kafka_io.producer(settings, **{"delivery.report.only.error": True})
    failures: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    summary = ReplaySummary()
    full = {f.topic: settings.topic(f.topic) for f in files}
    t_wall0 = time.perf_counter()
    t_event0: float | None = None
    since_progress = 0
    for item in merged(files, zones=zones):
        if speed > 0:
            if t_event0 is None:
                t_event0 = item.ts
            wait = (item.ts - t_event0) / speed - (time.perf_counter() - t_wall0)
            if wait > 0:
                prod.poll(0)
                time.sleep(wait)
        while True:
            try:
                prod.produce(full[item.topic], item.value, key=item.key, on_delivery=on_delivery)
                break
            except BufferError:
                prod.poll(0.05)
        summary.sent[item.topic] += 1
        summary.accelerometer_samples += item.samples
        if not item.valid:
            summary.malformed[item.topic] += 1
        since_progress += len(item.value) + 1
        if since_progress > 1 << 20:
            prod.poll(0)
            if progress:
                progress(since_progress)
            since_progress = 0
    remaining = prod.flush(60)
    summary.seconds = time.perf_counter() - t_wall0
    if progress and since_progress:
        progress(since_progress)
    if remaining:
        raise UserError(f"{remaining} messages were still unsent after 60 s — is the broker at "
                        f"{settings.bootstrap} overloaded or gone? Replay again")
    if failures:
        raise UserError(f"{len(failures)} messages were not delivered (first: {failures[0]}) — "
                        "check the broker and replay again")
    return summary
