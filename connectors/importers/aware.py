"""AWARE exports → contract events (``phenoflow import aware``).

Input: a folder with one CSV (or ``.csv.gz``) per AWARE table, in either of two
layouts, told apart per file by its header:

* **AWARE database export** — ``timestamp`` (ms since the epoch, UTC) and
  ``device_id``, then the table's own columns (AWARE sensor documentation,
  awareframework.com): ``screen`` (``screen_status``), ``calls``
  (``call_type``, ``call_duration``, ``trace``), ``messages`` (``message_type``,
  ``trace``), ``accelerometer`` (``double_values_0..2``, m/s²), ``locations``
  (``double_latitude``, ``double_longitude``, ``accuracy``), ``light``
  (``double_light_lux``) and ``timezone`` (``timezone``, an IANA name).
* **niimpy** (digitraceslab/niimpy sample data) — ``user``, ``device`` and
  ``time`` (seconds), string call/message types; files may be named
  ``multiuser_AwareScreen.csv`` etc.; ``gps.csv`` has no device column.

The participant is the ``device_id`` (database export) or the ``user`` (niimpy;
one user may have several devices), or ``--participant ID`` for a table
without either column; it is replaced at once by its keyed pseudonym
(project ``"aware"``), and peers' ``trace`` hashes by keyed hashes too.

Mapping (full table: docs/real-data.md, "AWARE and Beiwe"):

* ``screen_status`` 1 → ``on``, 0 → ``off``, 3 → ``unlock``, 2 (*locked*) →
  ``off``. The contract has no locked state. AWARE logs *locked* when the
  screen goes off with the keyguard active (Android) or the device locks (iOS),
  so the screen is off at that moment: after an ``off`` row (42 of the 51 in
  the niimpy sample, within 20 ms) the second ``off`` is a no-op for the
  hourly stage (a session ends once); without one (the other 9, 3000 s after
  an ``on``) it is the only evidence that the session ended, which dropping it
  would lose (the session would run on to the 4-h cap).
* ``call_type`` 1/``incoming``, 2/``outgoing``, 3/``missed`` (AWARE); 5
  ``rejected`` and 6 ``blocked`` (Android ``CallLog.Calls`` codes, which AWARE
  copies); anything else is dropped as an unknown value.
* ``message_type`` 1/``incoming`` (received), 2/``outgoing`` (sent).
* Tables phenoflow does not use (battery, …) are read, counted and dropped
  with the reason "stream not used by phenoflow".

Local time: an AWARE ``timezone`` table (per device, a zone valid from its
timestamp on) gives every event ``utc_offset_min`` at its own time (DST-
correct, :mod:`zoneinfo`); events before the first zone row take the first
zone. Without it events carry no offset, and ``participants.csv``'s
``timezone`` column (or UTC) applies at replay.
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path
from typing import Any, Callable, Iterator

from phenoflow.connectors.importers.report import ImportReport
from phenoflow.connectors.importers.rows import (
    AccelChunker,
    Table,
    number,
    open_table,
    table_files,
    table_stem,
    ts_ok,
)
from phenoflow.connectors.zones import ZoneOffsets, load_zone
from phenoflow.core.contract import ACCEL_MAX, TS_MAX, TS_MIN
from phenoflow.core.errors import UserError

__all__ = ["read_aware"]

PROJECT = "aware"

#: Normalised table name → the contract topic it feeds (None: read and counted, not mapped).
TABLES: dict[str, str | None] = {
    "screen": "raw.screen",
    "calls": "raw.call",
    "messages": "raw.sms",
    "accelerometer": "raw.accelerometer",
    "locations": "raw.location",
    "gps": "raw.location",
    "light": "raw.ambient",
}

#: Value columns each table needs (besides time and participant).
VALUE_COLUMNS: dict[str, tuple[str, ...]] = {
    "screen": ("screen_status",),
    "calls": ("call_type", "call_duration"),
    "messages": ("message_type",),
    "accelerometer": ("double_values_0", "double_values_1", "double_values_2"),
    "locations": ("double_latitude", "double_longitude"),
    "gps": ("double_latitude", "double_longitude"),
    "light": ("double_light_lux",),
    "timezone": ("timezone",),
}

SCREEN = {"0": "off", "1": "on", "2": "off", "3": "unlock"}
CALL = {"1": "incoming", "2": "outgoing", "3": "missed", "5": "rejected", "6": "blocked",
        "incoming": "incoming", "outgoing": "outgoing", "missed": "missed",
        "rejected": "rejected", "blocked": "blocked"}
MESSAGE = {"1": "incoming", "2": "outgoing", "incoming": "incoming", "outgoing": "outgoing",
           "received": "incoming", "sent": "outgoing"}

UNUSED = "stream not used by phenoflow"

Pseudonym = Callable[[str, str], str]


def table_name(path: Path) -> str:
    """``multiuser_AwareScreen.csv`` → ``screen``; ``calls.csv.gz`` → ``calls``."""
    s = table_stem(path).lower()
    s = re.sub(r"^(multiuser_)?(aware_?)?", "", s)
    return s or table_stem(path).lower()


class _Ids:
    """Where a table's time and participant come from (database export or niimpy)."""

    def __init__(self, table: Table, participant: str | None) -> None:
        cols = table.columns
        if "timestamp" in cols:
            self.time, self.div = cols["timestamp"], 1000.0  # ms
        elif "time" in cols:
            self.time, self.div = cols["time"], 1.0  # niimpy: s
        else:
            raise UserError(f"{table.path}: no timestamp column (AWARE: timestamp in ms; niimpy: time in s) "
                            "— export the table with its time column")
        pcol = next((c for c in ("device_id", "user", "device") if c in cols), None)
        if pcol is None and participant is None:
            raise UserError(f"{table.path}: no device_id (or user) column — this looks like a single-device "
                            "export: pass --participant ID")
        self.col = cols[pcol] if pcol is not None else None
        self.fixed = participant or ""  # used only without a participant column, where it is given
        self.width = len(cols)


def _zones(path: Path, participant: str | None, report: ImportReport) -> dict[str, tuple[list[float], list[ZoneOffsets]]]:
    """Raw participant → (sorted change times, zones) from an AWARE ``timezone`` table."""
    table = open_table(path, VALUE_COLUMNS["timezone"], "AWARE's timezone table has timestamp, device_id, timezone")
    changes: dict[str, list[tuple[float, str]]] = {}
    if table is None:
        return {}
    ids = _Ids(table, participant)
    zcol = table.columns["timezone"]
    cache: dict[str, ZoneOffsets | None] = {}
    for row in table.rows:
        report.read("timezone")
        if len(row) != ids.width:
            report.drop("timezone", "row has a different number of fields than the header")
            continue
        t = number(row[ids.time])
        name = row[zcol].strip()
        if t is None:
            report.drop("timezone", "timestamp not a number")
            continue
        if name not in cache:
            zone = load_zone(name)
            cache[name] = ZoneOffsets(zone) if zone is not None else None
        if cache[name] is None:
            report.drop("timezone", "timezone is not an IANA zone name")
            continue
        raw = ids.fixed if ids.col is None else row[ids.col]
        changes.setdefault(raw, []).append((t / ids.div, name))
        report.mapped("timezone")
    out = {}
    for raw, items in changes.items():
        items.sort()
        # AWARE logs the zone periodically (hourly by default): keep only the changes.
        kept = [it for i, it in enumerate(items) if i == 0 or it[1] != items[i - 1][1]]
        # every kept zone name has offsets: rows with an unknown zone were dropped above
        out[raw] = ([t for t, _ in kept], [z for _, n in kept if (z := cache[n]) is not None])
    return out


def read_aware(src: Path, *, pseudonym: Pseudonym, report: ImportReport,
               participant: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Contract events ``(short_topic, value)`` of an AWARE export folder, file by file.

    Every row read is counted in ``report`` as mapped or dropped with a reason.
    UserError for a missing folder, a file without its required columns, or an
    unreadable file.
    """
    src = Path(src)
    if not src.is_dir():
        raise UserError(f"{src} is not a folder — pass the folder holding the AWARE tables (screen.csv, calls.csv, …)")
    files: dict[str, Path] = {}
    for path in table_files(src):
        name = table_name(path)
        if name in files:
            raise UserError(f"{src} has two files for the AWARE table {name} ({files[name].name}, {path.name}) — keep one")
        files[name] = path
    if not files:
        raise UserError(f"{src} holds no CSV tables — expected AWARE tables such as screen.csv, calls.csv, accelerometer.csv")
    zones = _zones(files.pop("timezone"), participant, report) if "timezone" in files else {}
    ids_seen: dict[str, str] = {}  # raw id → pseudonym (kept in memory only)

    def pid_of(raw: str) -> str:
        pid = ids_seen.get(raw)
        if pid is None:
            pid = ids_seen[raw] = pseudonym(PROJECT, raw)
            report.timezone_source[pid] = (
                "AWARE timezone table" if raw in zones
                else "none in export: participants.csv timezone if set, else UTC")
        return pid

    offsets: dict[str, Callable[[float], int | None]] = {}

    def offset_fn(raw: str) -> Callable[[float], int | None]:
        fn = offsets.get(raw)
        if fn is None:
            if raw in zones:
                times, zs = zones[raw]

                def fn(ts: float, times: list[float] = times, zs: list[ZoneOffsets] = zs) -> int | None:
                    return zs[max(0, bisect.bisect_right(times, ts) - 1)].offset_min(ts)
            else:
                def fn(ts: float) -> int | None:
                    return None
            offsets[raw] = fn
        return fn

    for name, path in files.items():
        topic = TABLES.get(name)
        if topic is None:
            yield from _unused(path, name, report)
            continue
        table = open_table(path, VALUE_COLUMNS[name],
                           f"AWARE's {name} table has timestamp, device_id, {', '.join(VALUE_COLUMNS[name])}")
        if table is None:
            continue
        ids = _Ids(table, participant)
        unit = "timestamp ms ÷ 1000 → s" if ids.div != 1 else "time in s (niimpy layout), unchanged"
        report.conversions[name] = unit + {
            "accelerometer": "; double_values_0..2 in m/s² (AWARE's unit), unchanged",
            "screen": "; screen_status 2 (locked) → off",
        }.get(name, "")
        if name == "accelerometer":
            yield from _accelerometer(table, ids, name, report, pid_of, offset_fn, set(zones))
        else:
            yield from _events(table, ids, name, topic, report, pid_of, offset_fn, pseudonym)
    report.participants = len(ids_seen)


def _unused(path: Path, name: str, report: ImportReport) -> Iterator[tuple[str, dict[str, Any]]]:
    table = open_table(path, (), "")
    if table is not None:
        n = sum(1 for _ in table.rows)
        report.read(name, n)
        report.drop(name, UNUSED, n)
    return iter(())


def _events(table: Table, ids: _Ids, name: str, topic: str, report: ImportReport,
            pid_of: Callable[[str], str], offset_fn: Callable[[str], Callable[[float], int | None]],
            pseudonym: Pseudonym) -> Iterator[tuple[str, dict[str, Any]]]:
    """One event per row for the discrete tables (screen, calls, messages, locations, light)."""
    c = table.columns
    trace = c.get("trace")
    for row in table.rows:
        report.read(name)
        if len(row) != ids.width:
            report.drop(name, "row has a different number of fields than the header")
            continue
        t = number(row[ids.time])
        if t is None:
            report.drop(name, "timestamp not a number")
            continue
        ts = t / ids.div
        if not ts_ok(ts):
            report.drop(name, "timestamp outside 2000–2100 (wrong unit or broken clock)")
            continue
        raw = ids.fixed if ids.col is None else row[ids.col]
        if not raw:
            report.drop(name, "empty participant id")
            continue
        value: dict[str, Any]
        if name == "screen":
            code = row[c["screen_status"]].strip()
            state = SCREEN.get(code)
            if state is None:
                report.drop(name, "unknown screen_status (expected 0, 1, 2, 3)")
                continue
            value = {"ts": ts, "state": state}
        elif name == "calls":
            direction = CALL.get(row[c["call_type"]].strip().lower())
            if direction is None:
                report.drop(name, "unknown call_type (expected 1 incoming, 2 outgoing, 3 missed, 5, 6)")
                continue
            dur = number(row[c["call_duration"]])
            if dur is None or dur < 0 or dur > 172_800:
                report.drop(name, "call_duration not a number of seconds in 0–172800")
                continue
            value = {"ts": ts, "direction": direction, "duration_s": dur}
        elif name == "messages":
            direction = MESSAGE.get(row[c["message_type"]].strip().lower())
            if direction is None:
                report.drop(name, "unknown message_type (expected 1 received, 2 sent)")
                continue
            value = {"ts": ts, "direction": direction}
        elif name in ("locations", "gps"):
            lat, lon = number(row[c["double_latitude"]]), number(row[c["double_longitude"]])
            if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
                report.drop(name, "latitude/longitude missing or out of range")
                continue
            value = {"ts": ts, "lat": lat, "lon": lon}
            acc = number(row[c["accuracy"]]) if "accuracy" in c else None
            if acc is not None and acc >= 0:
                value["accuracy_m"] = acc
        else:  # light
            lux = number(row[c["double_light_lux"]])
            if lux is None or lux < 0:
                report.drop(name, "double_light_lux not a number ≥ 0")
                continue
            value = {"ts": ts, "light_lux": lux}
        if trace is not None and name in ("calls", "messages") and row[trace].strip():
            # AWARE's trace is an unkeyed SHA-1 of the phone number; re-key it so that
            # it cannot be matched against a dictionary of numbers.
            value["peer"] = pseudonym(PROJECT + "-peer", row[trace].strip())
        value["participant"] = pid_of(raw)
        off = offset_fn(raw)(ts)
        if off is not None:
            value["utc_offset_min"] = off
        report.mapped(name)
        yield topic, value


def _accelerometer(table: Table, ids: _Ids, name: str, report: ImportReport,
                   pid_of: Callable[[str], str], offset_fn: Callable[[str], Callable[[float], int | None]],
                   zoned: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Samples (m/s², AWARE's unit: no conversion) grouped into chunks of consecutive samples."""
    c = table.columns
    ix, iy, iz = c["double_values_0"], c["double_values_1"], c["double_values_2"]
    it, ip, fixed, width, div = ids.time, ids.col, ids.fixed, ids.width, ids.div
    chunker = AccelChunker()
    add = chunker.add
    read = mapped = 0
    last_raw: str | None = None
    pid, off_of = "", None
    drop = report.drop
    for row in table.rows:
        read += 1
        if len(row) != width:
            drop(name, "row has a different number of fields than the header")
            continue
        try:
            ts = float(row[it]) / div
            x, y, z = float(row[ix]), float(row[iy]), float(row[iz])
        except ValueError:
            drop(name, "timestamp or double_values_0..2 not a number")
            continue
        if not TS_MIN <= ts <= TS_MAX:
            drop(name, "timestamp outside 2000–2100 (wrong unit or broken clock)")
            continue
        if not (-ACCEL_MAX <= x <= ACCEL_MAX and -ACCEL_MAX <= y <= ACCEL_MAX and -ACCEL_MAX <= z <= ACCEL_MAX):
            drop(name, "axis value not finite or beyond ±500 m/s²")  # NaN fails every comparison
            continue
        raw = fixed if ip is None else row[ip]
        if raw != last_raw:
            if not raw:
                drop(name, "empty participant id")
                continue
            last_raw, pid, off_of = raw, pid_of(raw), (offset_fn(raw) if raw in zoned else None)
        mapped += 1
        done = add(pid, None if off_of is None else off_of(ts), ts, x, y, z)
        if done is not None:
            yield "raw.accelerometer", done
    done = chunker.flush()
    report.read(name, read)
    report.mapped(name, mapped)
    if done is not None:
        yield "raw.accelerometer", done
