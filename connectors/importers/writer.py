"""Writes a replay-format cohort from importer output: one JSON-lines file per raw topic, in event-time order.

Readers yield events per input file (hour by hour, participant by participant),
so a topic's events arrive in many short time-ordered runs. The writer keeps at
most ``spill_bytes`` of encoded events in memory; when full it sorts what it has
by (event time, arrival) and spills it to a run file, and at the end it
``heapq.merge``s the runs of each topic into the final file — an external merge
sort, so memory stays bounded on a 50-Hz day. Every value is validated against
the event contract (msgspec) before it is written; a value that fails is a
reader bug and stops the import with the reason.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import msgspec

from phenoflow.connectors.importers.report import ImportReport
from phenoflow.core.contract import RAW_TOPICS, TOPIC_TYPES

__all__ = ["CohortWriter"]

#: Default in-memory budget of encoded events before a run is spilled (bytes).
SPILL_BYTES = 64 << 20
#: Topics written gzip-compressed (50-Hz accelerometer JSON is ~60 bytes a sample).
GZIP_TOPICS = {"raw.accelerometer"}

_ENC = msgspec.json.Encoder()


def _event_time(value: Any) -> float:
    ts = value.ts
    return ts[0] if isinstance(ts, list) else ts


class CohortWriter:
    """Collects ``(short_topic, value)`` pairs and writes them as a cohort directory on :meth:`close`."""

    def __init__(self, out: Path, report: ImportReport, *, spill_bytes: int = SPILL_BYTES) -> None:
        self.out = out
        self.report = report
        self.spill_bytes = spill_bytes
        self.participants: set[str] = set()
        out.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=out))
        self._buf: dict[str, list[tuple[float, int, bytes]]] = {}
        self._runs: dict[str, list[Path]] = {}
        self._size = 0
        self._seq = 0

    def add(self, short: str, value: dict[str, Any]) -> None:
        """Validate ``value`` as a contract value of ``short`` and queue it."""
        if short not in RAW_TOPICS:
            raise ValueError(f"importer produced unknown topic {short!r}")
        try:
            event = msgspec.convert(value, TOPIC_TYPES[short])
        except msgspec.ValidationError as exc:
            raise ValueError(f"importer produced an invalid {short} value: {exc}") from None
        line = _ENC.encode(event)
        self._seq += 1
        self._buf.setdefault(short, []).append((_event_time(event), self._seq, line))
        self._size += len(line) + 64
        self.participants.add(event.participant)  # type: ignore[union-attr]  # validated above: an event, not a DeadLetter
        self.report.written[short] += 1
        if self._size >= self.spill_bytes:
            self._spill()

    def _spill(self) -> None:
        for short, items in self._buf.items():
            if not items:
                continue
            items.sort(key=lambda it: (it[0], it[1]))
            path = self._tmp / f"{short}.{len(self._runs.get(short, []))}.run"
            with open(path, "wb", buffering=1 << 20) as fh:
                for t, seq, line in items:
                    fh.write(b"%r\t%d\t%s\n" % (t, seq, line))
            self._runs.setdefault(short, []).append(path)
        self._buf = {}
        self._size = 0

    @staticmethod
    def _read_run(path: Path) -> Iterator[tuple[float, int, bytes]]:
        with open(path, "rb", buffering=1 << 20) as fh:
            for raw in fh:
                t, seq, line = raw.rstrip(b"\n").split(b"\t", 2)
                yield float(t), int(seq), line

    def abort(self) -> None:
        """Remove the spilled runs (after a failed import)."""
        shutil.rmtree(self._tmp, ignore_errors=True)

    def close(self, extra_columns: dict[str, dict[str, str]] | None = None) -> list[Path]:
        """Merge and write every topic file, ``participants.csv`` and ``import_report.json``; return the files."""
        self._spill()
        written: list[Path] = []
        try:
            for short in RAW_TOPICS:
                runs = self._runs.get(short)
                if not runs:
                    continue
                stem = short.removeprefix("raw.")
                path = self.out / (f"{stem}.jsonl.gz" if short in GZIP_TOPICS else f"{stem}.jsonl")
                fh: gzip.GzipFile | BinaryIO = (gzip.open(path, "wb", compresslevel=1) if short in GZIP_TOPICS
                                 else open(path, "wb", buffering=1 << 20))
                with fh:
                    for _, _, line in heapq.merge(*(self._read_run(r) for r in runs)):
                        fh.write(line + b"\n")
                written.append(path)
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
        extra = extra_columns or {}
        cols = sorted({c for attrs in extra.values() for c in attrs})
        with open(self.out / "participants.csv", "w", newline="") as fh2:
            w = csv.writer(fh2)
            w.writerow(["participant", *cols])
            for p in sorted(self.participants):
                w.writerow([p, *(extra.get(p, {}).get(c, "") for c in cols)])
        self.report.participants = len(self.participants)
        (self.out / "import_report.json").write_text(json.dumps(self.report.to_json(), indent=2) + "\n")
        return written
