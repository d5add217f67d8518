"""Offline hourly features: a cohort directory (replay format) → HourlyFeatures records.

The reference the streaming hourly flow is compared against, and the input of
model training. Each raw topic file is read as a stream (``survey`` is not an
hourly input and is skipped), every line decoded with
:func:`phenoflow.core.contract.decode` (dead letters are skipped and counted), the
files are merged in event-time order (``heapq.merge``; files are in time order
as ``phenoflow simulate`` and ``subscribe --out`` write them) and fed to one
:class:`~phenoflow.operators.hourly.aggregator.aggregator.HourlyAggregator` per participant, which
are flushed at the end. Memory is one aggregator per participant (~0.2 MiB
each), never the whole cohort.

Records come out as each participant's local days close (hour order within a
participant, participants interleaved), then the flushed remainders in
participant-id order.

Place frame key: the aggregators rotate GPS fixes into a keyed private frame
(:mod:`phenoflow.operators.places.frame`). Offline nothing is kept at rest — the
frame lives in memory for the run and no record carries a coordinate — so by
default the frame is keyed with the public constant :data:`OFFLINE_FRAME_KEY`:
offline features are reproducible everywhere (training, the held-out test, the
benchmarks) and never depend on, or create, a study's key file. A rotation keeps
every distance, so features under another key agree with the streaming flow's
to floating-point rounding (distances within 1e-8 m), except that a fix lying on
the edge of a DBSCAN neighbourhood or snapping cell may, rarely, fall on the other
side (measured: 1 hour of 1 317 moved 606 s between place roles, 4 simulated
participants × 14 days). To reproduce the flow's records bit for bit (the tests
that compare them exactly), pass the study's secret as ``frame_key``
(``study_secret(settings)[0]``, the key ``phenoflow run`` used).
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from phenoflow.connectors.cohort import CohortFile, cohort_files, read_lines
from phenoflow.connectors.zones import ZoneOffsets, localize, read_participant_zones
from phenoflow.core.contract import Accelerometer, DeadLetter, Event, HourlyFeatures, decode
from phenoflow.core.errors import UserError
from phenoflow.operators.hourly.aggregator import HourlyAggregator, HourlyConfig

__all__ = ["HOURLY_TOPICS", "BATCH", "OFFLINE_FRAME_KEY", "OfflineStats", "read_cohort_events",
           "hourly_features_from_cohort"]

#: Raw topics that feed the hourly features (survey is not one).
HOURLY_TOPICS: frozenset[str] = frozenset(
    {"raw.accelerometer", "raw.screen", "raw.call", "raw.sms", "raw.location", "raw.ambient"}
)


#: Default place-frame key of offline runs (public on purpose: offline state never leaves memory).
OFFLINE_FRAME_KEY = b"phenoflow.offline-place-frame"

#: Events per participant handed to :meth:`HourlyAggregator.update_batch` at once.
BATCH = 250


@dataclass
class OfflineStats:
    """Counts of one offline run (filled in while the iterator is consumed)."""

    events: Counter[str] = field(default_factory=Counter)  #: decoded events per topic
    dead_letters: Counter[str] = field(default_factory=Counter)  #: skipped lines per topic
    late_events: int = 0  #: events behind an already emitted hour (file out of time order)
    participants: int = 0
    records: int = 0


def _events(f: CohortFile, idx: int, stats: OfflineStats,
            zones: dict[str, ZoneOffsets]) -> Iterator[tuple[float, int, int, Event]]:
    for seq, line in enumerate(read_lines(f)):
        ev = decode(f.topic, None, line)
        if isinstance(ev, DeadLetter):
            stats.dead_letters[f.topic] += 1
            continue
        stats.events[f.topic] += 1
        zone = zones.get(ev.participant) if zones else None
        # participants.csv's zone gives offset-less events their offset, as replay does.
        for part in (localize(ev, zone) if zone is not None else (ev,)):
            ts = part.ts[0] if isinstance(part, Accelerometer) else part.ts  # type: ignore[attr-defined]  # raw types have ts
            yield ts, idx, seq, part


def read_cohort_events(cohort_dir: Path, stats: OfflineStats | None = None) -> Iterator[Event]:
    """Decoded raw events of the hourly topics, merged in event-time order.

    Ties are broken by topic order, then line order, so the sequence is
    deterministic. Events without ``utc_offset_min`` of a participant whose
    ``participants.csv`` row names a ``timezone`` get that zone's offset. Raises UserError if the directory is missing or has no
    hourly topic file.
    """
    stats = stats if stats is not None else OfflineStats()
    try:
        files = cohort_files(Path(cohort_dir), set(HOURLY_TOPICS))
    except UserError as exc:
        if Path(cohort_dir).is_dir():
            raise UserError(f"{cohort_dir} has no raw sensor file — expected accelerometer.jsonl[.gz], "
                            "screen.jsonl, call.jsonl, sms.jsonl, location.jsonl or ambient.jsonl "
                            "(write a cohort with `phenoflow simulate`)") from exc
        raise
    zones = read_participant_zones(Path(cohort_dir))
    streams = [_events(f, i, stats, zones) for i, f in enumerate(files)]
    for _, _, _, ev in heapq.merge(*streams, key=lambda t: (t[0], t[1], t[2])):
        yield ev


def hourly_features_from_cohort(
    cohort_dir: Path,
    config: HourlyConfig | None = None,
    stats: OfflineStats | None = None,
    frame_key: bytes | None = None,
) -> Iterator[HourlyFeatures]:
    """Hourly feature records of every participant of a cohort directory.

    Exactly one record per participant-hour from the participant's first to
    last hour of data. ``stats`` (optional) is filled with event, dead-letter
    and late counts while iterating. ``frame_key`` keys the private place frame
    (default :data:`OFFLINE_FRAME_KEY`; pass the study's secret to match the
    streaming flow bit for bit — see the module docstring).
    """
    key = OFFLINE_FRAME_KEY if frame_key is None else frame_key
    stats = stats if stats is not None else OfflineStats()
    config = config or HourlyConfig()
    aggs: dict[str, HourlyAggregator] = {}
    pending: dict[str, list[object]] = {}

    def feed(pid: str) -> list[HourlyFeatures]:
        step = aggs[pid].update_batch(pending.pop(pid))
        stats.late_events += len(step.late)
        stats.records += len(step.records)
        return step.records

    # Events go to the aggregators in batches per participant, as in the flow: the
    # accelerometer path is vectorised per batch, and any batching gives the same records.
    for ev in read_cohort_events(cohort_dir, stats):
        pid = ev.participant
        if pid not in aggs:
            aggs[pid] = HourlyAggregator(pid, config, frame_key=key)
            stats.participants += 1
        batch = pending.setdefault(pid, [])
        batch.append(ev)
        if len(batch) >= BATCH:
            yield from feed(pid)
    for pid in sorted(pending):
        yield from feed(pid)
    for pid in sorted(aggs):
        rest = aggs[pid].flush()
        stats.records += len(rest)
        yield from rest
