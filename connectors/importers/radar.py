"""``phenoflow import radar``: RADAR-base output-restructure exports → contract events.

Layout: ``SRC/<userId>/<topic>/YYYYMMDD_HH00.csv.gz`` (one file per UTC hour;
``SRC`` may also be a single ``<userId>`` folder). Columns ``key.projectId,
key.userId, key.sourceId, value.<field>…``. Each row is typed as the RADAR
schema types it (``float`` fields rounded to 32 bits, as the Avro record on the
cluster holds them), then mapped by :mod:`phenoflow.connectors.radar.mapping`,
the same code as the live source, so live and imported data agree.

Per participant the ``application_time_zone`` files are read first, so every
event gets the offset in force at its time (``LocalTime``); before the first
record the zone passed as ``timezone`` (else UTC). Rows that do not map are
counted in the report with their reason. File-level damage (truncated gzip,
unreadable file) keeps the rows read before it, counts the file in
``report.file_errors`` and the import goes on with the next file.
"""

from __future__ import annotations

import csv
import gzip
import struct
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

from phenoflow.connectors.importers.report import ImportReport
from phenoflow.connectors.radar import mapping as m
from phenoflow.core.errors import UserError

__all__ = ["read_radar"]

#: Accelerometer samples per imported chunk (≈ 50 s at 50 Hz).
CHUNK = 2500

_F32 = struct.Struct("<f")
_D, _F, _I, _S = "double", "float", "int", "string"
#: Avro type of each value column the mapping reads, per value schema (RADAR-Schemas).
FIELDS: dict[str, dict[str, str]] = {
    m.ACCELERATION: {"time": _D, "x": _F, "y": _F, "z": _F},
    m.USER_INTERACTION: {"time": _D, "interactionState": _S},
    m.LIGHT: {"time": _D, "light": _F},
    m.RELATIVE_LOCATION: {"time": _D, "latitude": "?" + _D, "longitude": "?" + _D, "accuracy": "?" + _F},
    m.CALL: {"time": _D, "duration": "?" + _F, "type": _S},
    m.SMS: {"time": _D, "type": _S},
    m.TIME_ZONE: {"time": _D, "offset": _I},
    m.QUESTIONNAIRE: {"time": _D, "timeCompleted": "?" + _D, "name": _S},
}


class _BadRow(Exception):
    pass


def _converter(kind: str, column: str) -> Callable[[str | None], Any]:
    """Text of one CSV cell → the value the Avro field of type ``kind`` holds ("?" = nullable)."""
    optional = kind.startswith("?")
    kind = kind.lstrip("?")
    pack, unpack = _F32.pack, _F32.unpack

    def convert(text: str | None) -> Any:
        if text is None:
            raise _BadRow(f"missing column {column}")
        if text == "":
            if optional:
                return None
            raise _BadRow(f"empty {column}")
        if kind == _S:
            return text
        try:
            if kind == _I:
                return int(text)
            v = float(text)
        except ValueError:
            raise _BadRow(f"non-numeric {column}") from None
        if kind == _F:
            try:
                return unpack(pack(v))[0]  # the 32-bit float the Avro record holds
            except OverflowError:
                raise _BadRow(f"{column} out of float range") from None
        return v

    return convert


def _answers(row: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    i = 0
    while f"value.answers.{i}.value" in row:
        text = row[f"value.answers.{i}.value"]
        value: Any = text
        for cast in (int, float):
            try:
                value = cast(text)
                break
            except ValueError:
                continue
        out.append({"value": value})
        i += 1
    return out


def _rows(path: Path, report: ImportReport, label: str) -> Iterator[list[str]]:
    """CSV rows of one ``.csv.gz`` (or ``.csv``), header first; damage is recorded, the rows before it kept."""
    n = -1
    try:
        raw = gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")
        with raw as fh:
            for row in csv.reader(fh):
                n += 1
                yield row
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        report.file_error(label, f"truncated or corrupt gzip after {n} rows ({type(exc).__name__}) — "
                                     "re-export the file; the rows before the damage were imported")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        report.file_error(label, f"unreadable after {n} rows ({type(exc).__name__}: {exc}) — fix or re-export it")


def _users(src: Path, participant: str | None) -> list[Path]:
    if not src.is_dir():
        raise UserError(f"RADAR-base export {src} not found — pass the folder that holds <userId>/<topic>/*.csv.gz")
    if any((src / t).is_dir() for t in m.TOPIC_SCHEMA):
        users = [src]  # a single <userId> folder
    else:
        users = sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
    if participant is not None:
        users = [u for u in users if u.name == participant]
        if not users:
            raise UserError(f"no folder {participant!r} in {src} — check --participant (the raw userId folder)")
    if not users:
        raise UserError(f"{src} holds no <userId>/<topic>/ folders — is it a RADAR-base output-restructure export?")
    return users


def _topic_files(user: Path) -> list[tuple[str, list[Path]]]:
    topics = sorted(p for p in user.iterdir() if p.is_dir())
    # Time zones first: every later event needs the offset in force at its time.
    topics.sort(key=lambda p: m.TOPIC_SCHEMA.get(p.name) != m.TIME_ZONE)
    return [(t.name, sorted(f for f in t.iterdir() if f.name.endswith((".csv.gz", ".csv")))) for t in topics]


def read_radar(src: Path, *, pseudonym: Callable[[str, str], str], report: ImportReport,
               participant: str | None = None, timezone: str | None = None,
               progress: Callable[[int], None] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Contract events ``(short_topic, value)`` of a RADAR-base export (see the module docstring)."""
    report.conversions["android_phone_acceleration"] = f"x, y, z in g × {m.G} → m/s²"
    report.conversions["android_phone_user_interaction"] = "UNLOCKED → unlock; STANDBY, SHUTDOWN → off"
    report.conversions["android_phone_relative_location"] = "offsets from a random reference, longitude wrapped to [-180, 180)"
    report.conversions["application_time_zone"] = "offset s → utc_offset_min, from its time until the next"
    # Files are named "#<k>/<topic>/<file>" in the report, k = the user folder's place in sorted
    # order: the folder name is the raw userId, which must not appear in the report.
    for k, user in enumerate(_users(src, participant), 1):
        local: dict[str, m.LocalTime] = {}
        changes: dict[str, int] = {}
        for topic, files in _topic_files(user):
            schema = m.TOPIC_SCHEMA.get(topic)
            for path in files:
                if progress is not None:
                    progress(path.stat().st_size)
                if schema is None:
                    n = max(sum(1 for _ in _rows(path, report, f"#{k}/{topic}/{path.name}")) - 1, 0)
                    report.read(topic, n)
                    report.drop(topic, "topic not mapped to the event contract", n)
                    continue
                yield from _file(topic, schema, path, f"#{k}/{topic}/{path.name}", pseudonym, report, local,
                                 changes, timezone)
        for pid in local:
            n = changes.get(pid, 0)
            before = timezone or "UTC"
            report.timezone_source[pid] = (f"application_time_zone ({n} changes); {before} before the first"
                                           if n else f"{before} (no application_time_zone record)")


def _file(topic: str, schema: str, path: Path, label: str, pseudonym: Callable[[str, str], str], report: ImportReport,
          local: dict[str, m.LocalTime], changes: dict[str, int], timezone: str | None
          ) -> Iterator[tuple[str, dict[str, Any]]]:
    rows = _rows(path, report, label)
    header = next(rows, None)
    if header is None:
        return
    col = {name: i for i, name in enumerate(header)}
    missing = [c for c in ("key.userId", *(f"value.{f}" for f in FIELDS[schema])) if c not in col]
    if missing:
        report.file_error(label, f"missing column {missing[0]} — is this a {topic} export?")
    # (field, column index or None, converter) — looked up once per file, not per row.
    fields = [(f, col.get(f"value.{f}"), _converter(kind, f"value.{f}")) for f, kind in FIELDS[schema].items()]
    i_user, i_project = col.get("key.userId"), col.get("key.projectId")
    pids: dict[tuple[str, str], str] = {}
    run: list[tuple[str, dict[str, Any]]] = []
    n_read = n_mapped = 0
    map_value, Drop, TimeZoneChange = m.map_value, m.Drop, m.TimeZoneChange
    for row in rows:
        n_read += 1
        width = len(row)
        try:
            user = row[i_user] if i_user is not None and i_user < width else ""
            project = row[i_project] if i_project is not None and i_project < width else ""
            if not user:
                raise _BadRow("missing key.userId")
            value = {f: conv(row[i] if i is not None and i < width else None) for f, i, conv in fields}
        except _BadRow as exc:
            report.drop(topic, str(exc))
            continue
        if schema == m.QUESTIONNAIRE:
            value["answers"] = _answers(dict(zip(header, row, strict=False)))
        pid = pids.get((project, user))
        if pid is None:
            pid = pids[(project, user)] = pseudonym(project, user)
            local.setdefault(pid, m.LocalTime(timezone))
        res = map_value(schema, pid, value)
        if isinstance(res, Drop):
            report.drop(topic, res.reason)
            continue
        n_mapped += 1
        if isinstance(res, TimeZoneChange):
            local[pid].add(res.time, res.offset_min)
            changes[pid] = changes.get(pid, 0) + 1
        else:
            run.append(res)
            if len(run) >= CHUNK:
                yield from _emit(run, local)
                run = []
    report.read(topic, n_read)
    report.mapped(topic, n_mapped)
    yield from _emit(run, local)


def _emit(run: list[tuple[str, dict[str, Any]]], local: dict[str, m.LocalTime]) -> Iterator[tuple[str, dict[str, Any]]]:
    for short, value in m.coalesce(run, CHUNK):
        yield from ((short, v) for v in local[value["participant"]].apply(short, value))
