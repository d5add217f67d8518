"""Streaming CSV tables for the file importers (AWARE, Beiwe): open, check, iterate, chunk.

Shared by :mod:`.aware` and :mod:`.beiwe`. A table is read row by row with
:mod:`csv` (plain or ``.csv.gz``), never loaded whole. Whole-file problems —
unreadable or truncated gzip, not UTF-8, broken CSV quoting, a missing
required column — raise :class:`~phenoflow.core.errors.UserError` with one line
naming the file, the cause and the fix; per-row problems are the reader's to
count as drops.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from phenoflow.core.contract import ACCEL_MAX, MAX_CHUNK, TS_MAX, TS_MIN
from phenoflow.core.errors import UserError

__all__ = ["G", "AccelChunker", "Table", "accel_ok", "number", "open_table", "table_files", "table_stem", "ts_ok"]

#: Standard gravity, m/s² per g (CGPM 1901; ISO 80000-3).
G = 9.80665


def table_files(folder: Path) -> list[Path]:
    """``*.csv`` and ``*.csv.gz`` files of ``folder`` in name order (Beiwe names sort by hour)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith((".csv", ".csv.gz")))


def table_stem(path: Path) -> str:
    """File name without ``.csv`` / ``.csv.gz``."""
    name = path.name
    return name[: -len(".csv.gz")] if name.lower().endswith(".csv.gz") else name[: -len(".csv")]


@dataclass
class Table:
    """An open CSV table: header → column index, and its data rows as lists of strings."""

    path: Path
    columns: dict[str, int]
    rows: Iterator[list[str]] = field(repr=False)

    def has(self, name: str) -> bool:
        """Whether the table has a column called ``name``."""
        return name in self.columns


def open_table(path: Path, required: Sequence[str], fix: str) -> Table | None:
    """Open ``path``; None for an empty file (no header). UserError if a required column is missing.

    ``fix`` completes the missing-column message (what a valid export looks like).
    """
    try:
        raw = gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        header = _guard(path, lambda: next(reader, None))
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc}) — check the path and its permissions") from None
    if header is None:
        text.close()
        return None
    columns = {name.strip(): i for i, name in enumerate(header)}
    missing = [c for c in required if c not in columns]
    if missing:
        text.close()
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} (found {', '.join(columns) or 'none'}) "
                        f"— {fix}")
    return Table(path, columns, _rows(path, reader, text))


_READ_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError, csv.Error)


def _user_error(path: Path, exc: BaseException) -> UserError:
    """The one-line UserError for a read failure of ``path``."""
    if isinstance(exc, UnicodeDecodeError):
        return UserError(f"{path} is not UTF-8 text — export it as UTF-8 CSV")
    if isinstance(exc, csv.Error):
        return UserError(f"{path}: not valid CSV ({exc}) — fix or re-export the file")
    return UserError(f"{path}: truncated or corrupt gzip ({exc}) — re-export the file (`gzip -t FILE` checks one)")


def _guard(path: Path, step: Any) -> Any:
    try:
        return step()
    except _READ_ERRORS as exc:
        raise _user_error(path, exc) from None


def _rows(path: Path, reader: Any, text: io.TextIOWrapper) -> Iterator[list[str]]:
    # One try around the loop (not one per row): the consumer's own exceptions are not
    # raised in here, only the reader's.
    try:
        for row in reader:
            if row:
                yield row
    except _READ_ERRORS as exc:
        raise _user_error(path, exc) from None
    finally:
        text.close()


def number(text: str) -> float | None:
    """A finite float from a CSV cell, or None (empty, non-numeric, NaN, ±inf)."""
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def ts_ok(ts: float) -> bool:
    """Within the contract's event-time range (2000-01-01 .. 2100-01-01 UTC)."""
    return TS_MIN <= ts <= TS_MAX


class AccelChunker:
    """Groups consecutive accelerometer samples into contract chunks (dicts).

    A chunk ends at :data:`~phenoflow.core.contract.MAX_CHUNK` samples, when the
    participant or the UTC offset changes, when time goes backwards, or at a UTC
    hour boundary — so a 50-Hz hour (≈ 180,000 samples) becomes 18 chunks and no
    chunk reaches far ahead of its first sample, by which replay orders it.
    Memory: one chunk.
    """

    def __init__(self, max_samples: int = MAX_CHUNK) -> None:
        self.max = max_samples
        self._pid = ""
        self._off: int | None = None
        self._hour = -math.inf
        self._last = -math.inf
        self.ts: list[float] = []
        self.x: list[float] = []
        self.y: list[float] = []
        self.z: list[float] = []

    def add(self, pid: str, off: int | None, ts: float, x: float, y: float, z: float) -> dict[str, Any] | None:
        """Add one sample (m/s²); return the chunk it closed, if any."""
        # Per-sample hot path (≈ 4 M calls for a 50-Hz day): plain comparisons, no tuples.
        hour = ts // 3600.0
        out = None
        if self.ts and (hour != self._hour or ts < self._last or pid != self._pid or off != self._off
                        or len(self.ts) >= self.max):
            out = self.flush()
        self._pid, self._off, self._hour, self._last = pid, off, hour, ts
        self.ts.append(ts)
        self.x.append(x)
        self.y.append(y)
        self.z.append(z)
        return out

    def flush(self) -> dict[str, Any] | None:
        """The open chunk as an event value (None if empty); starts a new one."""
        if not self.ts:
            return None
        off = self._off
        value: dict[str, Any] = {"participant": self._pid, "ts": self.ts, "x": self.x, "y": self.y, "z": self.z}
        if off is not None:
            value["utc_offset_min"] = off
        self.ts, self.x, self.y, self.z = [], [], [], []
        return value


def accel_ok(x: float, y: float, z: float) -> bool:
    """All three axes within the contract's ±500 m/s² (a larger value is a unit error)."""
    return abs(x) <= ACCEL_MAX and abs(y) <= ACCEL_MAX and abs(z) <= ACCEL_MAX
