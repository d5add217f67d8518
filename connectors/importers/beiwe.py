"""Beiwe raw exports → contract events (``phenoflow import beiwe``).

Input: Beiwe's raw layout ``SRC/<participant>/<stream>/YYYY-MM-DD HH_00_00+00_00.csv``
(one file per UTC hour; ``SRC`` may also be one participant's folder). Columns
per stream as Beiwe writes them (onnela-lab/forest ``docs/source/passive-data.md``
and ``forest/poplar/raw/noncode/headers.json``), ``timestamp`` in ms UTC:

===============  =========================================================  ===================
stream           columns used                                               topic
===============  =========================================================  ===================
accelerometer    timestamp, x, y, z  (Android m/s², iOS g → × 9.80665)      raw.accelerometer
gps              timestamp, latitude, longitude, accuracy (m)               raw.location
power_state      timestamp, event                                           raw.screen
calls            timestamp, call type, duration in seconds, hashed phone    raw.call
texts            timestamp, sent vs received, hashed phone number           raw.sms
===============  =========================================================  ===================

``power_state`` events: Android ``Screen turned on`` → ``on``, ``Screen turned
off`` → ``off`` (Android Beiwe logs no unlock, so ``screen_unlocks`` is 0 for
Android participants); iOS ``Unlocked`` → ``unlock`` (a session starts),
``Locked`` → ``off``. Charging, power-save, doze and shutdown events are
dropped as "not a screen event". Calls: ``Incoming Call``, ``Outgoing Call``,
``Missed Call`` (an empty duration of a missed call is 0 s). Texts: ``sent
SMS``/``sent MMS`` → outgoing, ``received SMS``/``received MMS`` → incoming.
Hashed phone numbers are re-keyed (keyed pseudonym) before they become ``peer``.

Platform (for the accelerometer unit): the participant's ``identifiers``
files (``device_os`` per enrolment, applied from its timestamp on, so a
participant who changed phones is handled), else the ``power_state`` events
(iOS and Android name them differently), else the median ‖a‖ of the first
1,000 accelerometer samples (≈ 1 → g, ≈ 9.8 → m/s²); the report says which.
Beiwe records no time zone: events carry no ``utc_offset_min`` and
``participants.csv``'s ``timezone`` (or UTC) applies at replay.
"""

from __future__ import annotations

import bisect
import math
import statistics
from pathlib import Path
from typing import Any, Callable, Iterator

from phenoflow.connectors.importers.report import ImportReport
from phenoflow.connectors.importers.rows import (
    AccelChunker,
    G,
    Table,
    accel_ok,
    number,
    open_table,
    table_files,
    ts_ok,
)
from phenoflow.core.errors import UserError

__all__ = ["read_beiwe"]

PROJECT = "beiwe"

TOPICS = {"accelerometer": "raw.accelerometer", "gps": "raw.location", "power_state": "raw.screen",
          "calls": "raw.call", "texts": "raw.sms"}
REQUIRED = {"accelerometer": ("timestamp", "x", "y", "z"), "gps": ("timestamp", "latitude", "longitude"),
            "power_state": ("timestamp", "event"), "calls": ("timestamp", "call type"),
            "texts": ("timestamp", "sent vs received"), "identifiers": ("timestamp", "device_os")}
#: Streams Beiwe writes that phenoflow does not map (their rows are counted as dropped).
KNOWN_UNUSED = {"wifi", "bluetooth", "gyro", "magnetometer", "devicemotion", "proximity", "reachability",
                "app_log", "ios_log", "survey_answers", "survey_timings", "audio_recordings", "image_survey"}

SCREEN = {"Screen turned on": "on", "Screen turned off": "off", "Unlocked": "unlock", "Locked": "off"}
IOS_EVENTS = {"Unlocked", "Locked", "Unknown", "Unplugged", "Charging", "Full"}
ANDROID_EVENTS = {"Screen turned on", "Screen turned off", "Power connected", "Power disconnected",
                  "Device shut down signal received", "Device reboot signal received"}
CALL = {"Incoming Call": "incoming", "Outgoing Call": "outgoing", "Missed Call": "missed"}
TEXT = {"sent SMS": "outgoing", "received SMS": "incoming", "sent MMS": "outgoing", "received MMS": "incoming"}

UNUSED = "stream not used by phenoflow"
Pseudonym = Callable[[str, str], str]


def _participants(src: Path, participant: str | None) -> list[tuple[str, Path]]:
    """(raw id, folder) of every participant under ``src`` (or ``src`` itself)."""
    if not src.is_dir():
        raise UserError(f"{src} is not a folder — pass the Beiwe export folder (<participant>/<stream>/*.csv)")
    streams = set(TOPICS) | set(REQUIRED) | KNOWN_UNUSED
    if any((src / s).is_dir() for s in streams):
        return [(participant or src.name, src)]
    found = [(p.name, p) for p in sorted(src.iterdir())
             if p.is_dir() and any((p / s).is_dir() for s in streams)]
    if not found:
        raise UserError(f"{src} holds no Beiwe participant folder — expected <participant>/gps/*.csv, "
                        "<participant>/accelerometer/*.csv, …")
    if participant is not None:
        found = [(r, p) for r, p in found if r == participant]
        if not found:
            raise UserError(f"{src} has no participant folder named as --participant — check the id")
    return found


def _open(path: Path, stream: str) -> Table | None:
    return open_table(path, REQUIRED[stream], f"Beiwe's {stream} files have {', '.join(REQUIRED[stream])}")


def _ts(row: list[str], i: int) -> float | None:
    t = number(row[i])
    return None if t is None or not ts_ok(t / 1000.0) else t / 1000.0


class _Platform:
    """The participant's OS over time: 'iOS' (accelerometer in g) or 'Android' (m/s²)."""

    def __init__(self, folder: Path) -> None:
        self.times: list[float] = []
        self.oses: list[str] = []
        self.source = ""
        ident = folder / "identifiers"
        if ident.is_dir():
            for path in table_files(ident):
                table = _open(path, "identifiers")
                if table is None:
                    continue
                for row in table.rows:
                    t, os_name = _ts(row, table.columns["timestamp"]), row[table.columns["device_os"]].strip()
                    if t is not None and os_name in ("iOS", "Android"):
                        self.times.append(t)
                        self.oses.append(os_name)
            if self.oses:
                order = sorted(range(len(self.times)), key=self.times.__getitem__)
                self.times = [self.times[i] for i in order]
                self.oses = [self.oses[i] for i in order]
                self.source = "identifiers device_os"
                return
        ps = folder / "power_state"
        if ps.is_dir():
            for path in table_files(ps):
                table = _open(path, "power_state")
                if table is None:
                    continue
                for row in table.rows:
                    ev = row[table.columns["event"]].strip() if len(row) > table.columns["event"] else ""
                    if ev in IOS_EVENTS or ev in ANDROID_EVENTS:
                        self.times, self.oses = [-math.inf], ["iOS" if ev in IOS_EVENTS else "Android"]
                        self.source = f"power_state event names ({ev!r})"
                        return

    def infer_from(self, folder: Path) -> None:
        """Fallback: median ‖a‖ of the first 1,000 samples, ≈ 1 g at rest vs ≈ 9.8 m/s²."""
        mags: list[float] = []
        for path in table_files(folder):
            table = _open(path, "accelerometer")
            if table is None:
                continue
            c = table.columns
            for row in table.rows:
                try:
                    mags.append(math.hypot(float(row[c["x"]]), float(row[c["y"]]), float(row[c["z"]])))
                except (ValueError, IndexError):
                    continue
                if len(mags) >= 1000:
                    break
            if len(mags) >= 1000:
                table.rows.close()  # type: ignore[attr-defined]  # rows is a generator: closing it closes the file
                break
        if mags:
            med = statistics.median(mags)
            self.times, self.oses = [-math.inf], ["iOS" if med < 4.0 else "Android"]
            self.source = f"inferred from median |a| = {med:.2f} of the first {len(mags)} samples"

    def at(self, ts: float) -> str | None:
        if not self.oses:
            return None
        return self.oses[max(0, bisect.bisect_right(self.times, ts) - 1)]


def read_beiwe(src: Path, *, pseudonym: Pseudonym, report: ImportReport,
               participant: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Contract events ``(short_topic, value)`` of a Beiwe raw export, file by file.

    Every row read is counted in ``report`` as mapped or dropped with a reason.
    """
    src = Path(src)
    people = _participants(src, participant)
    for raw, folder in people:
        pid = pseudonym(PROJECT, raw)
        report.timezone_source[pid] = "none in Beiwe (files are UTC hours): participants.csv timezone if set, else UTC"
        platform = _Platform(folder)
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            stream = sub.name
            if stream == "identifiers":
                for path in table_files(sub):
                    table = _open(path, stream)
                    n = 0 if table is None else sum(1 for _ in table.rows)
                    report.read(stream, n)
                    report.drop(stream, "used only for the platform (device_os)", n)
                continue
            if stream not in TOPICS:
                for path in table_files(sub):
                    table = open_table(path, (), "")
                    n = 0 if table is None else sum(1 for _ in table.rows)
                    report.read(stream, n)
                    report.drop(stream, UNUSED, n)
                continue
            if stream == "accelerometer":
                if not platform.oses:
                    platform.infer_from(sub)
                report.conversions["accelerometer"] = ("iOS: g × 9.80665 → m/s²; Android: m/s², unchanged "
                                                       f"(platform from {platform.source})")
            for path in table_files(sub):
                table = _open(path, stream)
                if table is None:
                    continue
                if stream == "accelerometer":
                    yield from _accelerometer(table, pid, platform, report)
                else:
                    yield from _events(table, stream, pid, report, pseudonym)
    report.participants += len(people)


def _events(table: Table, stream: str, pid: str, report: ImportReport,
            pseudonym: Pseudonym) -> Iterator[tuple[str, dict[str, Any]]]:
    c = table.columns
    topic = TOPICS[stream]
    width = len(c)
    peer_col = c.get("hashed phone number")
    for row in table.rows:
        report.read(stream)
        if len(row) != width:
            report.drop(stream, "row has a different number of fields than the header")
            continue
        ts = _ts(row, c["timestamp"])
        if ts is None:
            report.drop(stream, "timestamp not a number of ms in 2000–2100")
            continue
        value: dict[str, Any] = {"participant": pid, "ts": ts}
        if stream == "gps":
            lat, lon = number(row[c["latitude"]]), number(row[c["longitude"]])
            if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
                report.drop(stream, "latitude/longitude missing or out of range")
                continue
            value["lat"], value["lon"] = lat, lon
            acc = number(row[c["accuracy"]]) if "accuracy" in c else None
            if acc is not None and acc >= 0:
                value["accuracy_m"] = acc
        elif stream == "power_state":
            ev = row[c["event"]].strip()
            state = SCREEN.get(ev)
            if state is None:
                report.drop(stream, "not a screen event (charging, power save, doze, …)"
                            if ev in IOS_EVENTS | ANDROID_EVENTS or "signal received" in ev
                            else "unknown power_state event")
                continue
            value["state"] = state
        elif stream == "calls":
            direction = CALL.get(row[c["call type"]].strip())
            if direction is None:
                report.drop(stream, "unknown call type (expected Incoming/Outgoing/Missed Call)")
                continue
            text = row[c["duration in seconds"]].strip() if "duration in seconds" in c else ""
            dur = 0.0 if direction == "missed" and not text else number(text)
            if dur is None or dur < 0 or dur > 172_800:
                report.drop(stream, "duration in seconds not a number in 0–172800")
                continue
            value["direction"], value["duration_s"] = direction, dur
        else:  # texts
            direction = TEXT.get(row[c["sent vs received"]].strip())
            if direction is None:
                report.drop(stream, "unknown sent vs received value (expected sent/received SMS/MMS)")
                continue
            value["direction"] = direction
        if peer_col is not None and row[peer_col].strip():
            value["peer"] = pseudonym(PROJECT + "-peer", row[peer_col].strip())
        report.mapped(stream)
        yield topic, value


def _accelerometer(table: Table, pid: str, platform: _Platform,
                   report: ImportReport) -> Iterator[tuple[str, dict[str, Any]]]:
    c = table.columns
    it, ix, iy, iz, width = c["timestamp"], c["x"], c["y"], c["z"], len(c)
    chunker = AccelChunker()
    read = mapped = 0
    stream = "accelerometer"
    for row in table.rows:
        read += 1
        if len(row) != width:
            report.drop(stream, "row has a different number of fields than the header")
            continue
        try:
            ts = float(row[it]) / 1000.0
            x, y, z = float(row[ix]), float(row[iy]), float(row[iz])
        except ValueError:
            report.drop(stream, "timestamp or x, y, z not a number")
            continue
        if not ts_ok(ts):
            report.drop(stream, "timestamp not a number of ms in 2000–2100")
            continue
        if platform.at(ts) == "iOS":
            x, y, z = x * G, y * G, z * G
        if not accel_ok(x, y, z):
            report.drop(stream, "axis value not finite or beyond ±500 m/s²")
            continue
        mapped += 1
        done = chunker.add(pid, None, ts, x, y, z)
        if done is not None:
            yield "raw.accelerometer", done
    report.read(stream, read)
    report.mapped(stream, mapped)
    done = chunker.flush()
    if done is not None:
        yield "raw.accelerometer", done
