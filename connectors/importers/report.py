"""The mapping report every ``phenoflow import`` ends with (stdout and ``COHORT/import_report.json``).

It accounts for every input row: per stream, ``read == mapped + sum(dropped)``,
each drop with its reason. It names unit conversions and where local time came
from, and the pseudonym key's salt id — never a raw participant or device id.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ImportReport", "StreamCounts"]


@dataclass
class StreamCounts:
    """Rows of one input stream (e.g. ``android_phone_acceleration``, ``screen``, ``gps``)."""

    read: int = 0
    mapped: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def balanced(self) -> bool:
        """Every row read was either mapped or dropped with a reason."""
        return self.read == self.mapped + sum(self.dropped.values())


@dataclass
class ImportReport:
    """What one import read, wrote and dropped; filled in by the format's reader."""

    format: str
    salt_id: str = ""
    participants: int = 0
    streams: dict[str, StreamCounts] = field(default_factory=dict)
    #: e.g. ``{"android_phone_acceleration": "g × 9.80665 → m/s²"}``
    conversions: dict[str, str] = field(default_factory=dict)
    #: per participant pseudonym: where local time came from (``application_time_zone``,
    #: ``participants.csv timezone Europe/London``, ``UTC (no zone known)``, …)
    timezone_source: dict[str, str] = field(default_factory=dict)
    #: events written per contract topic (``raw.screen`` → n)
    written: Counter[str] = field(default_factory=Counter)
    #: input file → what was wrong with it as a whole (truncated gzip, missing column, …)
    file_errors: dict[str, str] = field(default_factory=dict)

    def stream(self, name: str) -> StreamCounts:
        """The counts of ``name``, created on first use."""
        counts = self.streams.get(name)
        if counts is None:
            counts = self.streams[name] = StreamCounts()
        return counts

    def read(self, stream: str, n: int = 1) -> None:
        """Count ``n`` rows of ``stream`` as read from the source file."""
        self.stream(stream).read += n

    def mapped(self, stream: str, n: int = 1) -> None:
        """Count ``n`` rows of ``stream`` as mapped to contract values."""
        self.stream(stream).mapped += n

    def drop(self, stream: str, reason: str, n: int = 1) -> None:
        """Count ``n`` rows of ``stream`` as dropped for ``reason`` (a person-readable phrase)."""
        self.stream(stream).dropped[reason] += n

    def file_error(self, path: str, reason: str) -> None:
        """Record damage to a whole input file (its readable rows are still counted row by row)."""
        self.file_errors.setdefault(path, reason)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (``import_report.json``)."""
        return {
            "format": self.format,
            "salt_id": self.salt_id,
            "participants": self.participants,
            "streams": {
                name: {"read": c.read, "mapped": c.mapped, "dropped": dict(c.dropped), "balanced": c.balanced()}
                for name, c in sorted(self.streams.items())
            },
            "conversions": dict(self.conversions),
            "timezone_source": dict(self.timezone_source),
            "written": dict(self.written),
            "file_errors": dict(self.file_errors),
        }
