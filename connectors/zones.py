"""Participant time zones: IANA names → per-event ``utc_offset_min`` (DST-correct).

Events that carry no ``utc_offset_min`` were treated as UTC. A cohort's
``participants.csv`` may now name each participant's zone in an optional
``timezone`` column (IANA name, e.g. ``Europe/London``); replay and the offline
features give such events the offset of that zone *at the event's own time*
(:mod:`zoneinfo`, the system's tz database), so a participant's local hours
follow daylight-saving changes (a 25-hour local day in autumn, 23 in spring).
Events that already carry an offset keep it: the phone knew better.

An accelerometer chunk that spans a zone transition is split at the first
sample on the other side, because the contract gives a chunk one offset.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from phenoflow.connectors.cohort import read_csv
from phenoflow.core.contract import Accelerometer, Event
from phenoflow.core.errors import UserError

__all__ = ["ZoneOffsets", "load_zone", "localize", "read_participant_zones"]

#: Offsets are cached per 15-minute bin of UTC time: every tz-database transition since
#: 1970 falls on a multiple of 15 min UTC, so an offset is constant within a bin.
_BIN_S = 900


def load_zone(name: str) -> ZoneInfo | None:
    """The zone called ``name``, or None if the tz database has no such zone."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


class ZoneOffsets:
    """``offset_min(ts)``: minutes east of UTC of one IANA zone at UTC epoch seconds ``ts``."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._cache: dict[int, int] = {}

    def offset_min(self, ts: float) -> int:
        """UTC offset in whole minutes at ``ts`` (local = UTC + offset)."""
        key = int(ts // _BIN_S)
        off = self._cache.get(key)
        if off is None:
            delta = datetime.fromtimestamp(key * _BIN_S, timezone.utc).astimezone(self.zone).utcoffset()
            off = self._cache[key] = int(delta.total_seconds() // 60) if delta is not None else 0
        return off


def read_participant_zones(directory: Path) -> dict[str, ZoneOffsets]:
    """participant → zone from ``DIR/participants.csv``'s optional ``timezone`` column.

    Empty when the file or the column is missing; a blank cell means "no zone" (UTC).
    An unknown zone name is a UserError naming the file and line.
    """
    path = Path(directory) / "participants.csv"
    if not path.exists():
        return {}
    columns, rows = read_csv(path, (), "")
    if "timezone" not in columns:
        return {}  # nothing to apply; other tools check the rest of the file
    if "participant" not in columns:
        raise UserError(f"{path} has a timezone column but no participant column — add the participant ids")
    zones: dict[str, ZoneOffsets] = {}
    by_name: dict[str, ZoneOffsets] = {}
    for n, row in enumerate(rows, start=2):
        name = row["timezone"]
        if not name:
            continue
        if name not in by_name:
            zone = load_zone(name)
            if zone is None:
                raise UserError(f"{path} line {n}: timezone {name!r} is not an IANA zone name — "
                                "use a name such as Europe/London or America/New_York, or leave it empty for UTC")
            by_name[name] = ZoneOffsets(zone)
        zones[row["participant"]] = by_name[name]
    return zones


def localize(event: Event, zone: ZoneOffsets) -> Iterator[Event]:
    """``event`` with ``utc_offset_min`` from ``zone`` (unchanged if it has one).

    An accelerometer chunk whose samples straddle a transition comes out as
    consecutive chunks, one per offset.
    """
    if event.utc_offset_min is not None:
        yield event
        return
    if not isinstance(event, Accelerometer):
        yield msgspec.structs.replace(event, utc_offset_min=zone.offset_min(event.ts))  # type: ignore[attr-defined]  # raw types have ts
        return
    ts = event.ts
    offs = [zone.offset_min(t) for t in ts]
    if len(set(offs)) == 1:
        yield msgspec.structs.replace(event, utc_offset_min=offs[0])
        return
    start = 0
    for i in range(1, len(ts) + 1):
        if i == len(ts) or offs[i] != offs[start]:
            yield Accelerometer(participant=event.participant, utc_offset_min=offs[start], ts=ts[start:i],
                                x=event.x[start:i], y=event.y[start:i], z=event.z[start:i])
            start = i
