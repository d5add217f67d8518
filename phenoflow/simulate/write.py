"""Writing simulated streams as contract JSON lines, sorted by ``ts``.

Columns of all participants are concatenated, ordered by time with a stable
sort (ties keep participant order, so output is deterministic), turned into
contract Structs in batches and encoded with msgspec's ``encode_lines``.
Batching bounds memory: a batch's Python objects are freed before the next.
Files are written to a temporary name and renamed, so a crash never leaves a
half-written file under a cohort name; gzip output has a fixed header
(no name, mtime 0) so equal seeds give byte-identical ``.gz`` files.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import msgspec
import numpy as np

from phenoflow.core.contract import (
    Accelerometer,
    Ambient,
    Call,
    Location,
    Screen,
    Sms,
    Survey,
)
from phenoflow.simulate.sensors import CALL_DIRECTIONS, SCREEN_STATES, SMS_DIRECTIONS

__all__ = ["FILES", "Cols", "write_stream"]

#: Cohort file stems in contract order (one per raw topic).
FILES: tuple[str, ...] = ("accelerometer", "screen", "call", "sms", "location", "ambient", "survey")
_BATCH = 20_000
_ENCODER = msgspec.json.Encoder()
_SCREEN = np.array(SCREEN_STATES, dtype=object)
_CALL = np.array(CALL_DIRECTIONS, dtype=object)
_SMS = np.array(SMS_DIRECTIONS, dtype=object)
_VOICE = np.array([None, False, True], dtype=object)

Cols = dict[str, np.ndarray]


def _nan_to_none(values: np.ndarray) -> list:
    out = values.astype(object)
    out[np.isnan(values)] = None
    return out.tolist()


def _accelerometer(p: list, o: list, c: Cols) -> Iterable[msgspec.Struct]:
    return [Accelerometer(participant=a, utc_offset_min=b, ts=t, x=x, y=y, z=z)
            for a, b, t, x, y, z in zip(p, o, c["ts"].tolist(), c["x"].tolist(), c["y"].tolist(),
                                        c["z"].tolist(), strict=True)]


def _screen(p: list, o: list, c: Cols) -> Iterable[msgspec.Struct]:
    return [Screen(participant=a, utc_offset_min=b, ts=t, state=s)
            for a, b, t, s in zip(p, o, c["ts"].tolist(), _SCREEN[c["state"]].tolist(), strict=True)]


def _call(p: list, o: list, c: Cols) -> Iterable[msgspec.Struct]:
    return [Call(participant=a, utc_offset_min=b, ts=t, direction=d, duration_s=s, peer=q)
            for a, b, t, d, s, q in zip(p, o, c["ts"].tolist(), _CALL[c["direction"]].tolist(),
                                        c["duration_s"].tolist(), c["peer"].tolist(), strict=True)]


def _sms(p: list, o: list, c: Cols) -> Iterable[msgspec.Struct]:
    return [Sms(participant=a, utc_offset_min=b, ts=t, direction=d, peer=q)
            for a, b, t, d, q in zip(p, o, c["ts"].tolist(), _SMS[c["direction"]].tolist(),
                                     c["peer"].tolist(), strict=True)]


def _location(p: list, o: list, c: Cols) -> Iterable[msgspec.Struct]:
    return [Location(participant=a, utc_offset_min=b, ts=t, lat=la, lon=lo, accuracy_m=acc)
            for a, b, t, la, lo, acc in zip(p, o, c["ts"].tolist(), c["lat"].tolist(),
                                            c["lon"].tolist(), c["accuracy_m"].tolist(), strict=True)]


def _ambient(p: list, o: list, c: Cols) -> Iterable[msgspec.Struct]:
    return [Ambient(participant=a, utc_offset_min=b, ts=t, light_lux=li, sound_db=so, voice=v)
            for a, b, t, li, so, v in zip(p, o, c["ts"].tolist(), _nan_to_none(c["light_lux"]),
                                          _nan_to_none(c["sound_db"]),
                                          _VOICE[c["voice"].astype(np.int64) + 1].tolist(), strict=True)]


def _survey(p: list, o: list, c: Cols) -> Iterable[msgspec.Struct]:
    return [Survey(participant=a, utc_offset_min=b, ts=t, instrument="who5", score=s)
            for a, b, t, s in zip(p, o, c["ts"].tolist(), c["score"].tolist(), strict=True)]


_BUILDERS: dict[str, Callable[[list, list, Cols], Iterable[msgspec.Struct]]] = {
    "accelerometer": _accelerometer, "screen": _screen, "call": _call, "sms": _sms,
    "location": _location, "ambient": _ambient, "survey": _survey,
}


def write_stream(path: Path, name: str, parts: Sequence[tuple[int, Cols]], ids: Sequence[str],
                 offsets: Sequence[int], *, gz: bool = False) -> int:
    """Write one topic file from per-participant column sets; return the line count.

    ``parts`` holds (participant index, columns) pairs; ``ids``/``offsets`` map the
    index to the participant id and UTC offset, unless the columns carry a
    per-row ``utc_offset_min`` (clock changes). Rows are ordered by ``ts`` (for
    accelerometer chunks, the first sample's ``ts``).
    """
    keys = parts[0][1].keys() if parts else ()
    cols = {k: np.concatenate([c[k] for _, c in parts]) for k in keys}
    who = np.concatenate([np.full(len(c["ts"]), i, np.int64) for i, c in parts]) if parts else \
        np.zeros(0, np.int64)
    key = cols["ts"][:, 0] if name == "accelerometer" and who.size else cols.get("ts", who)
    order = np.argsort(key, kind="stable")
    id_arr = np.array(ids, dtype=object)
    off_arr = np.array(offsets, dtype=np.int64)
    row_off = cols.pop("utc_offset_min", None)
    build = _BUILDERS[name]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as raw:
        fh = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=3) if gz else raw
        try:
            for s in range(0, order.size, _BATCH):
                idx = order[s:s + _BATCH]
                off = off_arr[who[idx]] if row_off is None else row_off[idx]
                rows = build(id_arr[who[idx]].tolist(), off.tolist(),
                             {k: v[idx] for k, v in cols.items()})
                fh.write(_ENCODER.encode_lines(rows))
        finally:
            if gz:
                fh.close()
    os.replace(tmp, path)
    return int(order.size)
