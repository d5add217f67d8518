"""``phenoflow rhythm HOURLY.csv [--out FILE]``: offline rhythm statistics.

Reads an hourly CSV — a ``time`` column (local hour start, ISO 8601, e.g.
``2024-03-01T13:00``) and one numeric column per modality (empty cell = missing
hour; absent rows = missing hours) — and writes one JSON line per local day with
data: ``{"day": "YYYY-MM-DD", "features": {...}, "coverage": {...}}``, the same
names and the same computation (:func:`phenoflow.operators.rhythm.statistics.rhythm_features`)
as the ``rhythm.daily`` topic. An optional ``filled`` column (as in
``features.hourly``) marks imputed hours: rows with ``filled >= 1`` count as missing.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from phenoflow.core.errors import UserError
from phenoflow.operators.rhythm.statistics import (
    DEFAULT_MIN_COVERAGE,
    WINDOWS_DAYS,
    rhythm_features,
)

__all__ = ["rhythm_from_csv", "read_hourly_csv"]

_FIX_TIME = "write the local hour start in ISO 8601, e.g. 2024-03-01T13:00"


def _parse_time(cell: str, where: str) -> tuple[int, int]:
    """(day ordinal, hour) of a local hour-start cell; tz suffixes are ignored
    because the column already holds local wall-clock time."""
    text = cell.strip()
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{where}: cannot parse {text!r} as a time — {_FIX_TIME}") from None
    if stamp.minute or stamp.second or stamp.microsecond:
        raise UserError(
            f"{where}: {text!r} is not the start of an hour — round times down to the hour"
        )
    return stamp.date().toordinal(), stamp.hour


def _parse_value(cell: str, where: str) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise UserError(
            f"{where}: {text!r} is not a number — write a number, or leave the cell "
            "empty for a missing hour"
        ) from None
    if math.isinf(value):
        raise UserError(f"{where}: {text!r} is infinite — write a finite number or leave it empty")
    return value


def read_hourly_csv(
    path: Path, modalities: Sequence[str] | None = None
) -> tuple[list[str], dict[int, np.ndarray]]:
    """Read an hourly CSV into ``(modalities, {day ordinal: (24, M) array})``.

    NaN marks a missing hour. A repeated time overwrites the earlier row (as the
    stage does, e.g. the repeated hour when clocks fall back). Raises
    :class:`UserError` naming the row (file line number; the header is row 1) and
    column of anything malformed.
    """
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file — pass the path of an hourly CSV") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot open ({exc.strerror}) — check the path") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise UserError(
                f"{path}: the file is empty — it needs a header row with `time` and modality columns"
            ) from None
        except csv.Error as exc:
            raise UserError(f"{path}: line 1: not valid CSV ({exc}) — fix the header") from None
        if "time" not in header:
            raise UserError(
                f"{path}: no `time` column (found: {', '.join(header) or 'nothing'}) — "
                "add a `time` column with the local hour start, e.g. 2024-03-01T13:00"
            )
        t_col = header.index("time")
        f_col = header.index("filled") if "filled" in header else None
        if modalities is None:
            mods = [h for i, h in enumerate(header) if i not in (t_col, f_col) and h]
        else:
            mods = list(modalities)
            absent = [m for m in mods if m not in header]
            if absent:
                raise UserError(
                    f"{path}: missing column(s) {', '.join(absent)} — add them or choose "
                    "other modalities"
                )
        if not mods:
            raise UserError(f"{path}: no modality columns besides `time` — add one column per modality")
        if len(set(mods)) != len(mods):
            raise UserError(f"{path}: repeated column names in the header — name each column once")
        cols = [header.index(m) for m in mods]
        days: dict[int, np.ndarray] = {}
        try:
            for row in reader:
                line = reader.line_num
                if not any(c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise UserError(
                        f"{path}: row {line} has {len(row)} fields but the header has "
                        f"{len(header)} — give every row one cell per column"
                    )
                day, hour = _parse_time(row[t_col], f"{path}: row {line}, column `time`")
                values = np.array(
                    [_parse_value(row[c], f"{path}: row {line}, column `{header[c]}`") for c in cols]
                )
                if f_col is not None:
                    filled = _parse_value(row[f_col], f"{path}: row {line}, column `filled`")
                    if filled >= 1.0:
                        values[:] = np.nan  # imputed type-2 hour: missing, not data
                grid = days.get(day)
                if grid is None:
                    grid = days[day] = np.full((24, len(mods)), np.nan)
                grid[hour] = values
        except csv.Error as exc:
            raise UserError(f"{path}: line {reader.line_num}: not valid CSV ({exc}) — fix that line") from None
    return mods, days


def rhythm_from_csv(
    path: Path,
    out: Path | None = None,
    *,
    modalities: Sequence[str] | None = None,
    continuous: Sequence[str] | None = None,
    count_columns: Sequence[str] = (),
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> int:
    """Compute rhythm statistics for every local day with data; return the number of days written.

    ``modalities``: columns to use (default: every column but ``time`` and
    ``filled``). IS and IV are defined for any hourly series (actigraphy counts are
    their classic use), so every modality gets them except the ``count_columns``
    opted out; ``continuous`` instead names exactly the modalities that get them.
    Output goes to ``out`` or, if None, to standard output, one JSON object per
    line, days in order.
    """
    if not 0.0 <= min_coverage <= 1.0:
        raise UserError(f"min coverage {min_coverage} is outside [0, 1] — pass a fraction such as 0.5")
    mods, days = read_hourly_csv(path, modalities)
    unknown = [c for c in count_columns if c not in mods]
    if unknown:
        raise UserError(f"{path}: --count-columns {', '.join(unknown)} not among the columns "
                        f"({', '.join(mods)}) — name columns of the CSV (in --count-columns, "
                        "PHENOFLOW_COUNT_COLUMNS or the config file's count_columns)")
    cont = tuple(m for m in mods if m not in set(count_columns)) if continuous is None else tuple(continuous)
    span = max(WINDOWS_DAYS)
    empty = np.full((24, len(mods)), np.nan)
    target: TextIO
    if out is None:
        target = sys.stdout
    else:
        try:
            target = Path(out).open("w", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{out}: cannot write ({exc.strerror}) — choose a writable path") from None
    written = 0
    try:
        for day in sorted(days):
            if np.isnan(days[day]).all():
                continue  # no data that day: no line, as in the rhythm.daily stage
            window = np.stack([days.get(d, empty) for d in range(day - span + 1, day + 1)])
            features, coverage = rhythm_features(
                window, mods, continuous=cont, min_coverage=min_coverage
            )
            line = {
                "day": dt.date.fromordinal(day).isoformat(),
                "features": features,
                "coverage": coverage,
            }
            target.write(json.dumps(line, allow_nan=False, separators=(",", ":")) + "\n")
            written += 1
    finally:
        if out is not None:
            target.close()
    return written
